"""Spiking neurons and their integer codes: the bottom layer of spikedet (imports only torch).

- :mod:`~spikedet.snn.code`: :class:`SpikeCode` (levels, scale, zero offset, encoding) and spike planes;
- :mod:`~spikedet.snn.neurons`: IBRA-LIF, I-LIF, LIF, the A2S neuron, and the one neuron registry;
- :mod:`~spikedet.snn.spikes`: the spike-coded activations passed between layers in spike mode.
"""

from spikedet.snn.code import SpikeCode
from spikedet.snn.neurons import (
    IBRALIF,
    ILIF,
    LIF,
    NEURONS,
    A2SNeuron,
    SpikingNeuron,
    make_neuron,
    neuron_from_spec,
    register_neuron,
)
from spikedet.snn.spikes import SpikeCat, SpikeSum, SpikeTrain

__all__ = [
    "A2SNeuron",
    "IBRALIF",
    "ILIF",
    "LIF",
    "NEURONS",
    "SpikeCat",
    "SpikeCode",
    "SpikeSum",
    "SpikeTrain",
    "SpikingNeuron",
    "make_neuron",
    "neuron_from_spec",
    "register_neuron",
]
