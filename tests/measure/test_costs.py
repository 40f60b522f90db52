"""The three energy models on a network whose counts can be checked by hand."""

import pytest
import torch

from spikedet.measure import costs, energy
from spikedet.measure.costs import EnergyConstants
from spikedet.snn.neurons import IBRALIF
from tests.measure.test_energy import hand_network


def sram(capacity_bytes: float, bits: int) -> float:
    """Horowitz's 8 KB SRAM figure (10 pJ per 64-bit access), linear from an empty buffer: every buffer of the
    hand network is under 8 KB."""
    assert capacity_bytes <= 8192
    return 10.0 * capacity_bytes / 8192 * bits / 64


@pytest.fixture(scope="module")
def report():
    # conv1: 3 -> 2 channels, 1x1, on a 4x4 image: 96 MACs, 6 weights, 32 potentials
    # neuron: 32 updates, codes 5 (2 spikes) and 511 (9 spikes) on 16 elements each: 176 spikes
    # conv2: 2 -> 1, 1x1, on spikes: 32 MACs, 2 weights, 16 outputs, 176 ACs
    net = hand_network(IBRALIF(D=5.11, N=100))
    return energy.estimate_energy(net, torch.zeros(1, 3, 4, 4))[0]


def test_integer_model_charges_int8_arithmetic_against_an_int8_ann(report):
    model = report.energy_models["integer"]
    assert model.snn_mJ == pytest.approx((96 * (0.2 + 0.1) + 176 * 0.1) * 1e-9)
    assert model.ann_mJ == pytest.approx((96 + 32) * (0.2 + 0.1) * 1e-9)
    assert "int8 ANN" in model.baseline


def test_memory_model_adds_sram_traffic_and_neuron_updates_by_hand(report):
    event = 20.0 * 32 / 64  # a 32-bit event from the 32 KB event buffer
    conv1 = 96 * (0.3 + sram(6, 8) + sram(48, 8)) + 32 * sram(128, 32)
    neuron = 32 * (0.1 + 2 * sram(128, 32)) + 176 * event
    conv2 = 176 * (0.1 + sram(2, 8) + 2 * sram(64, 32)) + 176 * event
    ann = 96 * (0.3 + sram(6, 8) + sram(48, 8)) + 32 * sram(32, 8) + 32 * (0.3 + sram(2, 8) + sram(32, 8)) + 16 * sram(16, 8)
    model = report.energy_models["memory"]
    assert model.snn_mJ == pytest.approx((conv1 + neuron + conv2) * 1e-9)
    assert model.ann_mJ == pytest.approx(ann * 1e-9)
    assert [n.updates for n in report.neurons] == [32] and [n.spikes for n in report.neurons] == [176]


def test_convention_model_is_the_top_level_figure(report):
    model = report.energy_models["convention"]
    assert (model.snn_mJ, model.ann_mJ, model.efficiency) == (report.snn_mJ, report.ann_mJ, report.efficiency)
    assert model.snn_mJ == pytest.approx((96 * 4.6 + 176 * 0.9) * 1e-9)


def test_plain_figures_spikes_per_element_and_sparsity(report):
    assert report.spikes_per_element == pytest.approx(5.5)  # ACs / MACs of the convs on spikes
    assert report.effective_macs == 96 and report.spiking_macs == 32
    assert report.activation_sparsity == 0.0  # no input element of conv2 is silent
    assert report.layers[1].sparsity == 0.0 and report.layers[0].sparsity is None


def test_every_model_reports_its_baseline_constants_with_sources_and_assumptions(report):
    out = report.to_dict()
    assert set(out["energy_models"]) == {"convention", "integer", "memory", "spikeyolo"}
    for name, model in out["energy_models"].items():
        assert model["baseline"] and model["assumptions"] and model["efficiency"] > 0
        for constant in model["constants"].values():
            assert constant["source"] and constant["unit"] in ("pJ", "bits", "KB")
    assert out["energy_models"]["memory"]["constants"]["e_sram_1mb_pj"]["value"] == 100.0
    assert {"spikes_per_element", "activation_sparsity", "effective_macs", "effective_acs"} <= set(out)


def test_text_names_each_baseline_and_says_more_when_the_snn_costs_more(report):
    text = report.verdict("memory")
    assert text.startswith(f"{1 / report.energy_models['memory'].efficiency:.2f}x more energy with memory traffic")
    assert "int8 network" in text and "compute-only" in text
    lines = report.describe("integer")
    assert "against an int8 network" in lines[0] and "spikes per input element" in lines[-1]


def test_silent_inputs_count_as_sparsity():
    net = hand_network(IBRALIF(D=5.11, N=100), bias=(-1.0, 5.2))  # channel 0 silent, channel 1 fires 511
    report = energy.estimate_energy(net, torch.zeros(1, 3, 4, 4))[0]
    assert report.activation_sparsity == pytest.approx(0.5)


def test_sram_energy_grows_with_the_buffer_and_is_flat_above_1_mb():
    k = EnergyConstants()
    assert k.access_pj(8 * 1024, 64) == 10.0 and k.access_pj(32 * 1024, 64) == 20.0
    assert k.access_pj(2**20, 64) == k.access_pj(2**30, 64) == 100.0
    assert k.access_pj(20 * 1024, 32) == pytest.approx(15.0 / 2)


@pytest.mark.parametrize("bad, match", [
    ({"e_int_add_pj": -0.1}, "e_int_add_pj"),
    ({"weight_bits": 0}, "weight_bits"),
    ({"potential_bits": 7.5}, "potential_bits"),
    ({"e_sram_8kb_pj": 50.0}, "grow with the size"),
])
def test_bad_constants_are_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        EnergyConstants(**bad)


def test_every_constant_is_documented_with_a_source():
    assert set(costs.CONSTANTS) == set(EnergyConstants.names())
    for unit, source, meaning in costs.CONSTANTS.values():
        assert unit and source and meaning
