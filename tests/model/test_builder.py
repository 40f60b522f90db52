"""The YAML builder and the block registry: scales, neurons chosen in the YAML, clear config errors."""

import pytest
import torch
from torch import nn

from spikedet.errors import SpikedetError
from spikedet.model.builder import build_layers, load_model_cfg
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn import BLOCKS, register_block
from spikedet.snn.neurons import IBRALIF, ILIF


def test_scale_lookup_rule_and_structure():
    cfg = load_model_cfg("spikeyolo-s.yaml")
    assert cfg["scale"] == "s" and cfg["yaml_file"] == "spikeyolo-s.yaml"
    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False)
    assert [m.type for m in model.model][:3] == ["TimeRepeat", "DownSampling", "AllConvBlock"]
    assert model.model[-1].f == [19, 22, 25] and model.save == [4, 6, 10, 14, 19, 22, 25]
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    assert model.model[1].unit.neuron is None  # the first layer sees the real image
    # depth scaling with Python rounding: 3*0.33 -> 1, 6*0.33 -> 2, 9*0.33 -> 3
    assert [len(model.model[i]) if isinstance(model.model[i], nn.Sequential) else 1 for i in (2, 4, 6, 8)] == [1, 2, 3, 1]


def test_neuron_is_chosen_in_the_yaml():
    cfg = load_model_cfg("spikeyolo-t.yaml")
    cfg["neuron"] = {"type": "ILIF", "D": 4, "T": 2}
    model = SpikeDetectionModel(cfg, verbose=False)
    neurons = [m for _, m in model.neurons()]
    assert neurons and all(isinstance(n, ILIF) and n.L == 4 and n.T == 2 for n in neurons)
    out = model.eval()(torch.rand(1, 3, 64, 64))
    assert out[0].shape == (1, 84, 84)  # T is averaged away in the head
    default = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False)
    assert all(isinstance(n, IBRALIF) and n.L == 511 and n.T == 1 for _, n in default.neurons())


def test_registry_is_explicit_and_extensible():
    assert {"DownSampling", "StandardConv", "AllConvBlock", "ConvBlock", "SpikeSPPF", "SpikeDetect"} <= set(BLOCKS)

    @register_block("TestIdentityBlock", channels="same", neuron=False)
    class TestIdentityBlock(nn.Module):
        def __init__(self, c1):
            super().__init__()

        def forward(self, x):
            return x

    cfg = load_model_cfg("spikeyolo-t.yaml")
    cfg["backbone"].insert(3, [-1, 1, "TestIdentityBlock", []])
    for row in cfg["backbone"][4:] + cfg["head"]:  # shift absolute references
        if isinstance(row[0], list):
            row[0] = [f + 1 if f >= 3 else f for f in row[0]]
    model = SpikeDetectionModel(cfg, verbose=False)
    assert model.model[3].type == "TestIdentityBlock"
    del BLOCKS["TestIdentityBlock"]

    bad = load_model_cfg("spikeyolo-t.yaml")
    bad["head"][0] = [-1, 1, "Conv", [512, 1]]  # an Ultralytics block name is not spikedet's
    with pytest.raises(ValueError, match="unknown block 'Conv'"):
        build_layers(bad)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c: c.update(nc=0), "'nc' must be a positive integer"),
        (lambda c: c.update(neuron={"type": "IBRALIF", "D": 5.115}), "nearest valid"),
        (lambda c: c["head"].__setitem__(0, [30, 1, "StandardConv", [512, 1]]), "'from' must name earlier layers"),
        (lambda c: c["head"].__setitem__(0, [-1, 1, "StandardConv", ["width_x", 1]]), "unknown argument name 'width_x'"),
    ],
)
def test_config_errors_are_clear(edit, match):
    cfg = load_model_cfg("spikeyolo-t.yaml")
    edit(cfg)
    with pytest.raises(SpikedetError, match=match):
        SpikeDetectionModel(cfg, verbose=False)
