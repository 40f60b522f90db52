"""Spike mode of a network, and its conversion state read off its convs."""

from __future__ import annotations

import copy

import pytest
import torch

from spikedet.convert.bitplane import convert
from spikedet.errors import SpikedetError
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.conv import SpikeConv
from spikedet.nn.mode import is_converted, set_spike_mode, spike_path
from spikedet.snn.neurons import SpikingNeuron


def test_spike_mode_needs_a_reparameterized_model():
    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval()
    with pytest.raises(SpikedetError, match="re-parameterized"):
        set_spike_mode(model, "integer")


def test_conversion_state_lives_in_the_convs_and_survives_copies():
    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval()
    converted = convert(model, torch.zeros(1, 3, 64, 64))
    assert not is_converted(model) and is_converted(converted) and converted.converted and not model.converted
    convs = [m for m in converted.modules() if isinstance(m, SpikeConv)]
    assert convs[0].conversion is None  # the first conv sees the image, not spikes
    assert all(c.conversion is not None and c.conversion.terms for c in convs[1:])
    assert spike_path(converted) == converted.spike_path == "integer"
    set_spike_mode(converted, "bitplane")
    assert spike_path(converted) == "bitplane" and all(c.spike_path == "bitplane" for c in convs)
    assert all(n.spike_mode and n.report_name for n in converted.modules() if isinstance(n, SpikingNeuron))
    clone = copy.deepcopy(converted)
    assert is_converted(clone) and spike_path(clone) == "bitplane"
    set_spike_mode(converted, None)
    assert spike_path(converted) is None and is_converted(converted)  # float mode, still folded


def test_a_bad_path_is_refused():
    converted = convert(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval(), torch.zeros(1, 3, 64, 64))
    with pytest.raises(SpikedetError, match="one of integer, bitplane, exact, got 'float'"):
        set_spike_mode(converted, "float")
