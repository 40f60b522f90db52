"""What a model costs: energy from the spikes it fires, operation counts, activation analysis.

- :mod:`~spikedet.measure.energy`: :func:`measure` (hooks on the convs), :class:`EnergyReport`;
- :mod:`~spikedet.measure.opcount`: parameters and MACs per layer;
- :mod:`~spikedet.measure.analysis`: code histograms and per-layer energy, as plots, CSV and JSON;
- :mod:`~spikedet.measure.pipelines`: the ``info``, ``energy`` and ``analyze`` commands as functions.
"""

import importlib

#: The pipelines are imported on first use, so importing one light module of this package (e.g. the energy
#: models' constants for the CLI's settings) does not import torch and Ultralytics.
_LAZY = {"analyze_weights": "spikedet.measure.pipelines", "measure_energy": "spikedet.measure.pipelines", "model_info": "spikedet.measure.pipelines"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["analyze_weights", "measure_energy", "model_info"]
