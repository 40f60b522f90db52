"""spikedet's user-facing error type."""


class SpikedetError(ValueError):
    """A problem with what the user asked for (a bad value, a missing file): reported in one line."""
