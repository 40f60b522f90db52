"""spikedet: spiking object detection with IBRA-LIF neurons on the stock Ultralytics pipeline.

``import spikedet`` is light: it makes Ultralytics offline-safe and exposes the neurons; the detector
classes are imported from Ultralytics on first use (``spikedet.SpikeYOLO``).
"""

from spikedet.offline import make_offline_safe

make_offline_safe()  # before anything imports Ultralytics

from spikedet.neurons import ILIF, IBRALIF, LIF, SpikeCode, SpikingNeuron  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "SpikeYOLO": "spikedet.model",
    "SpikeDetectionModel": "spikedet.model",
    "SpikeDetectionTrainer": "spikedet.model",
    "SpikeDetectionValidator": "spikedet.model",
}

__all__ = ["IBRALIF", "ILIF", "LIF", "SpikeCode", "SpikingNeuron", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spikedet' has no attribute {name!r}")
