"""spikedet's user-facing error type."""


class SpikedetError(ValueError):
    """A problem with what the user asked for (a bad value, a missing file): reported in one line."""


def first_line(error: BaseException) -> str:
    r"""An exception as one line for a user: its message's first line (without Ultralytics' ``ERROR`` marks),
    else its type's name.

        >>> first_line(TypeError("ERROR \u274c\ufe0f x.pt is corrupted\nRecommended fixes are ..."))
        'x.pt is corrupted'
    """
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    line = line.removeprefix("ERROR")
    for mark in ("\u274c", "\ufe0f", "\u26a0"):  # Ultralytics' emoji marks
        line = line.replace(mark, " ")
    return " ".join(line.split()) or type(error).__name__
