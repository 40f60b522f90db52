"""spikedet: spiking object detection with IBRA-LIF neurons on the stock Ultralytics pipeline.

``import spikedet`` is light: it makes Ultralytics offline-safe and answers the module names of earlier
versions (for old checkpoints); everything else is imported on first use (``spikedet.SpikeYOLO``).
See ARCHITECTURE.md for the layers; the public names:

- models: :class:`SpikeYOLO` (Ultralytics' ``Model`` API), :class:`SpikeDetectionModel`, :func:`load_model`;
- neurons: :class:`IBRALIF`, :class:`ILIF`, :class:`LIF`, :class:`SpikingNeuron`, :class:`SpikeCode`;
- applications: :class:`Detector` (detections with energy per image);
- the commands as functions: :func:`convert_weights`, :func:`a2s_weights`, :func:`export_weights`,
  :func:`measure_energy`, :func:`analyze_weights`, :func:`model_info`.
"""

from spikedet.compat import install_legacy_names
from spikedet.offline import make_offline_safe

make_offline_safe()  # before anything imports Ultralytics
install_legacy_names()

__version__ = "0.1.0"

_LAZY = {
    "SpikeYOLO": "spikedet.engine.yolo",
    "SpikeDetectionModel": "spikedet.model.detection",
    "SpikeDetectionTrainer": "spikedet.engine.train",
    "SpikeDetectionValidator": "spikedet.engine.val",
    "load_model": "spikedet.io.weights",
    "IBRALIF": "spikedet.snn.neurons",
    "ILIF": "spikedet.snn.neurons",
    "LIF": "spikedet.snn.neurons",
    "SpikingNeuron": "spikedet.snn.neurons",
    "SpikeCode": "spikedet.snn.code",
    "Detector": "spikedet.detector",
    "convert_weights": "spikedet.convert.pipelines",
    "a2s_weights": "spikedet.convert.pipelines",
    "export_weights": "spikedet.convert.pipelines",
    "measure_energy": "spikedet.measure.pipelines",
    "analyze_weights": "spikedet.measure.pipelines",
    "model_info": "spikedet.measure.pipelines",
}

__all__ = ["__version__", *_LAZY]


def lazy_attributes(package: str, names: dict[str, str]):
    """A module ``__getattr__`` that imports each of ``names`` (attribute -> the module defining it) on first use,
    so importing ``package`` (or a light module inside it) does not import torch and Ultralytics."""

    def __getattr__(name: str):
        if name in names:
            import importlib

            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_attributes("spikedet", _LAZY)
