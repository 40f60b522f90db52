"""Loading models: YAML configs, pickled Ultralytics checkpoints (.pt) and spikedet's safetensors files."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from spikedet.assets import resolve_weights
from spikedet.errors import SpikedetError


def load_module(name: str | Path, device: str = "cpu") -> nn.Module:
    """The ``nn.Module`` of a model YAML (freshly initialised) or a weights file."""
    text = str(name)
    if text.endswith((".yaml", ".yml")):
        from spikedet.model import SpikeDetectionModel

        return SpikeDetectionModel(text, verbose=False).to(device)
    return load_detector(text).model.to(device)


def load_detector(weights: str | Path | None):
    """A :class:`~spikedet.model.SpikeYOLO` for a weights file (default weights when None) or a model YAML."""
    from spikedet.model import SpikeYOLO

    if weights is not None and str(weights).endswith((".yaml", ".yml")):
        return SpikeYOLO(str(weights))
    path = resolve_weights(weights)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return SpikeYOLO(str(path))
    raise SpikedetError(f"unsupported weights format {suffix!r} for {str(path)!r} (expected .pt or .safetensors)")
