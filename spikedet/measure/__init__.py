"""What a model costs: energy from the spikes it fires, operation counts, activation analysis.

- :mod:`~spikedet.measure.energy`: :func:`measure` (hooks on the convs), :class:`EnergyReport`;
- :mod:`~spikedet.measure.opcount`: parameters and MACs per layer;
- :mod:`~spikedet.measure.analysis`: code histograms and per-layer energy, as plots, CSV and JSON;
- :mod:`~spikedet.measure.pipelines`: the ``info``, ``energy`` and ``analyze`` commands as functions.
"""

from spikedet import lazy_attributes

#: The pipelines are imported on first use, so importing one light module of this package (e.g. the energy
#: models' constants for the CLI's settings) does not import torch and Ultralytics.
__getattr__ = lazy_attributes(
    "spikedet.measure", dict.fromkeys(("analyze_weights", "measure_energy", "model_info"), "spikedet.measure.pipelines")
)

__all__ = ["analyze_weights", "measure_energy", "model_info"]
