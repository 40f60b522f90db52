"""How a :class:`~spikedet.detector.Detector` can run its model: the names the detector, the service settings
and the CLI share (a module of its own so that settings and ``--help`` need not import torch to know them)."""

from __future__ import annotations

from typing import Literal

#: PyTorch (energy from hooks) or ONNX Runtime (energy from the graph's own spike counts)
BACKENDS = ("torch", "onnxruntime")
Backend = Literal["torch", "onnxruntime"]
