"""The detection model (Ultralytics' task level): :mod:`.builder` reads a model YAML through the block
registry, :mod:`.detection` holds :class:`SpikeDetectionModel` (re-parameterization, strides, description).
"""

from spikedet.model.detection import SpikeDetectionModel

__all__ = ["SpikeDetectionModel"]
