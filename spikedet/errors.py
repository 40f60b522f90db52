"""spikedet's user-facing error type."""


class SpikedetError(ValueError):
    """A problem with what the user asked for (a bad value, a missing file): reported in one line."""


def first_line(error: BaseException) -> str:
    """An exception as one line for a user: its message's first line, else its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
