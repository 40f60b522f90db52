"""The integer deployment model: conversion, the saved file, bit-exactness across runtimes, refusals."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from spikedet import integer_reference
from spikedet.assets import asset_dir
from spikedet.convert.integer import IntegerConfig, to_integer
from spikedet.convert.integer_verify import verify_integer
from spikedet.errors import SpikedetError
from spikedet.io.images import load_batch, sample_images
from spikedet.io.integer_format import graph_document
from spikedet.io.weights import load_model, read_config, save_model
from spikedet.model.builder import load_model_cfg
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.conv import SpikeConv
from spikedet.nn.mode import is_integer, spike_path
from spikedet.snn.neurons import SpikingNeuron
from tests.support.networks import with_real_batchnorm

DEFAULT = asset_dir("weights") / "yolov5n-a2s.safetensors"
RUNTIMES = ("pytorch", "onnxruntime")


def spikeyolo_t(neuron: dict, seed: int = 0) -> nn.Module:
    """spikeyolo-t with ``neuron`` and BNs with real statistics (a random network with varied ranges)."""
    torch.manual_seed(seed)
    model = SpikeDetectionModel({**load_model_cfg("spikeyolo-t.yaml"), "neuron": neuron}, verbose=False).eval()
    return with_real_batchnorm(model, bias=(-0.2, 0.5))


@pytest.fixture(scope="module")
def a2s_integer():
    """The shipped A2S model converted to integer (errors measured on two coco8 train images at 320)."""
    batch, _ = load_batch(sample_images("train"), 320, 2)
    return to_integer(load_model(DEFAULT), batch)


@pytest.fixture(scope="module")
def val_images():
    return load_batch(sample_images("val"), 320, 4)


def test_the_shipped_a2s_model_is_bit_exact_on_pytorch_and_onnxruntime_against_the_numpy_reference(
        a2s_integer, val_images):
    pytest.importorskip("onnxruntime")
    model, _ = a2s_integer
    batch, files = val_images
    report = verify_integer(model, batch, files, RUNTIMES)
    assert [c.runtime for c in report.checks] == list(RUNTIMES)
    assert report.codes > 5_000_000 and report.head_values > 1_000_000
    assert set(report.as_dict()["mismatches"].values()) == {0}
    assert set(report.as_dict()["head_mismatches"].values()) == {0}
    assert report.passed


@pytest.mark.parametrize("neuron", [
    {"type": "IBRALIF", "D": 5.11, "N": 100, "T": 1},
    {"type": "IBRALIF", "D": 5.11, "N": 100, "T": 2, "alpha": 0.25},
    {"type": "ILIF", "D": 4, "T": 2},
    {"type": "LIF", "T": 3},
], ids=["ibralif-T1", "ibralif-T2", "ilif-T2", "lif-T3"])
def test_spikeyolo_with_every_neuron_and_timesteps_is_bit_exact_on_every_runtime(neuron):
    pytest.importorskip("onnxruntime")
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    model, report = to_integer(spikeyolo_t(neuron), images)
    assert report.neurons == 70 + 18  # backbone/neck and head branches
    result = verify_integer(model, torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)),
                            runtimes=RUNTIMES)
    assert result.passed, result.as_dict()
    codes = integer_reference.run(*graph_document(model)[:1], {k: v.numpy() for k, v in graph_document(model)[1].items()},
                                  images[:1].numpy()).codes
    assert sum(int(v.sum()) for v in codes.values()) > 0  # the network fires


def test_integer_weights_are_int8_with_int16_only_where_int8_misses_the_tolerance(a2s_integer):
    model, report = a2s_integer
    by_name = {layer.conv: layer for layer in report.layers}
    convs = {n: m for n, m in model.named_modules() if isinstance(m, SpikeConv)}
    assert set(by_name) == set(convs)
    for name, layer in by_name.items():
        expected = 16 if layer.error_int8 > report.config["tolerance"] else 8
        # a conv joined to a wider one by a residual add is widened with it; YOLOv5's convs are never joined
        assert layer.bits == expected == convs[name].integer.weight_bits
        assert layer.error_int16 < layer.error_int8
        assert convs[name].integer.weight.dtype == (torch.int8 if layer.bits == 8 else torch.int16)
        assert 0 < layer.bound < (2**31 if layer.bits == 8 else 2**53)  # int16 layers may need 64-bit accumulators


def test_the_saved_file_carries_the_integer_graph_and_reloads_to_the_same_codes(a2s_integer, val_images, tmp_path):
    from safetensors import safe_open

    model, _ = a2s_integer
    path = save_model(model, tmp_path / "int8.safetensors")
    config = read_config(path)
    assert config["state"] == "integer" and config["version"] == 2 and config["graph"]["version"] == 1
    with safe_open(str(path), "numpy") as f:  # readable without spikedet: JSON + numpy arrays
        graph = json.loads(f.metadata()["spikedet"])["graph"]
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}
    conv = next(n for n in graph["nodes"] if n["op"] == "conv" and n["weight_bits"] == 8)
    assert dtypes[conv["weight"]] == np.int8 and dtypes[conv["bias"]] == np.int64 and dtypes[conv["scale"]] == np.float64
    reloaded = load_model(path)
    assert is_integer(reloaded) and spike_path(reloaded) == "exact"
    batch, _ = val_images
    with torch.no_grad():
        assert torch.equal(model(batch[:1])[0], reloaded(batch[:1])[0])


def test_integer_codes_stay_close_to_the_float64_model():
    model = spikeyolo_t({"type": "IBRALIF", "D": 5.11, "N": 100, "T": 1})
    # an image of k / 255 values (what Ultralytics feeds): the integer model reads it exactly as round(255 x)
    images = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(3)) / 255
    integer, _ = to_integer(model, images, IntegerConfig(weight_bits="16"))
    reference = copy.deepcopy(model).double().reparameterize()
    codes = {}
    for name, net, x in (("float", reference, images.double()), ("integer", integer, images)):
        seen = []
        hooks = [m.register_forward_hook(lambda mod, a, out, seen=seen: seen.append(
            out.codes if hasattr(out, "codes") else torch.round(out * mod.code.n)))
                 for m in net.modules() if isinstance(m, SpikingNeuron)]
        with torch.no_grad():
            net(x)
        for h in hooks:
            h.remove()
        codes[name] = seen
    first_float, first_int = codes["float"][0], codes["integer"][0]
    assert float((first_float != first_int).float().mean()) < 0.01  # int16 weights: few boundary cases differ
    assert float((first_float - first_int).abs().max()) <= 1


# -- refusals ----------------------------------------------------------------------------------------

def test_a_layer_above_the_tolerance_at_a_forced_width_is_refused_naming_it():
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with pytest.raises(SpikedetError, match=r"model\.\S+: int8 weights change its output by .* above the tolerance"):
        to_integer(spikeyolo_t({"type": "IBRALIF", "D": 5.11, "N": 100}), images,
                   IntegerConfig(weight_bits="8", tolerance=1e-5))


def test_accumulators_that_could_reach_2_to_53_are_refused_naming_the_layer():
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    huge = spikeyolo_t({"type": "IBRALIF", "L": 2**34, "N": 2**20})  # codes of 34 bits
    with pytest.raises(SpikedetError, match=r"model\.\S+: its accumulators could reach .* 2\*\*53"):
        to_integer(huge, images, IntegerConfig(weight_bits="16", tolerance=0.5))


def test_only_spiking_float_models_convert(a2s_integer):
    images = torch.rand(1, 3, 64, 64)
    with pytest.raises(SpikedetError, match="already an integer model"):
        to_integer(a2s_integer[0], images)
    with pytest.raises(SpikedetError, match="no spiking neurons"):
        to_integer(load_model("yolov5n.yaml"), images)
    with pytest.raises(SpikedetError, match="verify checks an integer model"):
        verify_integer(load_model(DEFAULT), images)
