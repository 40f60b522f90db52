"""What a model costs: energy from the spikes it fires, operation counts, activation analysis.

- :mod:`~spikedet.measure.energy`: :func:`measure` (hooks on the convs), :class:`EnergyReport`;
- :mod:`~spikedet.measure.opcount`: parameters and MACs per layer;
- :mod:`~spikedet.measure.analysis`: code histograms and per-layer energy, as plots, CSV and JSON;
- :mod:`~spikedet.measure.pipelines`: the ``info``, ``energy`` and ``analyze`` commands as functions.
"""

from spikedet.measure.pipelines import analyze_weights, measure_energy, model_info

__all__ = ["analyze_weights", "measure_energy", "model_info"]
