"""``spikedet serve`` and ``spikedet webcam`` (registered when the CLI loads its commands)."""
