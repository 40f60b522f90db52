"""The SpikeYOLO detector: builder and registry, re-parameterization, Ultralytics integration."""

import copy
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from spikedet.engine.yolo import SpikeYOLO
from spikedet.errors import SpikedetError
from spikedet.model.builder import build_layers, load_model_cfg
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn import BLOCKS, register_block
from spikedet.nn.conv import SpikeConv
from spikedet.nn.layers import SpikingConv
from spikedet.snn.neurons import IBRALIF, ILIF


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial statistics and affine parameters (fresh BNs are the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_((torch.rand(n, generator=g) - 0.5) * 0.6)
    return model


def neuron_codes(model: nn.Module, x: torch.Tensor):
    from spikedet.convert.verify import neuron_codes as codes_and_output

    return codes_and_output(model, x)


# -- builder -------------------------------------------------------------------------------------

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


# -- re-parameterization -------------------------------------------------------------------------

def test_reparameterization_is_exact_in_float64():
    torch.manual_seed(0)
    model = randomize_bn(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False)).eval().double()
    merged = copy.deepcopy(model).reparameterize()
    assert merged.is_fused() and not model.is_fused()
    for unit in merged.modules():
        if isinstance(unit, SpikingConv):
            assert isinstance(unit.body, SpikeConv) and unit.norm is None
    x = torch.rand(2, 3, 128, 128, dtype=torch.float64)
    codes_a, (ya, raw_a) = neuron_codes(model, x)
    codes_b, (yb, raw_b) = neuron_codes(merged, x)
    assert len(codes_a) == len(codes_b) == len(model.neurons())
    assert all(torch.equal(a, b) for a, b in zip(codes_a, codes_b))
    assert sum(int(a.ne(0).sum()) for a in codes_a) > 0  # not a trivially silent network
    for key in ("boxes", "scores"):
        rel = (raw_a[key] - raw_b[key]).abs().max() / raw_a[key].abs().max()
        assert rel < 1e-9


def test_reparameterization_float32_flips_codes_only_at_rounding_boundaries():
    torch.manual_seed(0)
    model = randomize_bn(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False)).eval()
    merged = copy.deepcopy(model).reparameterize()
    x = torch.rand(1, 3, 128, 128)
    codes_a, _ = neuron_codes(model, x)
    codes_b, _ = neuron_codes(merged, x)
    first = (codes_a[0] != codes_b[0]).float().mean().item()
    assert first < 1e-3  # direct flips only happen at rounding boundaries


def test_merged_convs_remember_their_trained_cost():
    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval().reparameterize()
    merged = [m for m in model.modules() if isinstance(m, SpikeConv) and m.trained_macs_per_pixel]
    assert merged
    for conv in merged:  # a merged 3x3 costs more per pixel than the 1x1 + depthwise chain it replaces
        assert conv.kernel_size == (3, 3) and conv.trained_macs_per_pixel < conv.macs_per_pixel()


# -- Ultralytics integration ---------------------------------------------------------------------

def test_spikeyolo_wraps_the_model():
    model = SpikeYOLO("spikeyolo-t.yaml")
    assert isinstance(model.model, SpikeDetectionModel) and model.task == "detect"
    assert model.model.args["model"] == "spikeyolo-t.yaml"


def test_a_few_iterations_reduce_the_loss(coco8_yaml):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    torch.manual_seed(0)
    data = check_det_dataset(coco8_yaml)
    cfg = get_cfg(overrides={"imgsz": 128, "batch": 4})
    dataset = build_yolo_dataset(cfg, data["train"], 4, data, mode="val", rect=False, stride=32)
    batch = next(iter(build_dataloader(dataset, 4, 0, shuffle=False)))
    batch["img"] = batch["img"].float() / 255
    model = SpikeDetectionModel("spikeyolo-t.yaml", nc=80, verbose=False)
    model.args = cfg
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        losses.append(loss.sum().item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_checkpoint_reloads_in_a_fresh_process_through_spikeyolo_and_plain_yolo(trained_checkpoint, coco8_val_images):
    assert trained_checkpoint.is_file()
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        images = sorted(str(p) for p in Path({str(coco8_val_images)!r}).glob("*.jpg"))
        if sys.argv[1] == "spikedet":
            from spikedet import SpikeYOLO
            model = SpikeYOLO({str(trained_checkpoint)!r})
        else:
            import spikedet  # the checkpoint pickles spikedet's classes; importing it is all YOLO needs
            from ultralytics import YOLO
            model = YOLO({str(trained_checkpoint)!r})
        out = []
        for r in model.predict(images, imgsz=160, conf=0.0001, max_det=20, verbose=False):
            out.append(r.boxes.data.tolist())
        print(json.dumps({{"type": type(model.model).__name__, "out": out}}))
        """
    )
    results = {}
    for loader in ("spikedet", "ultralytics"):
        proc = subprocess.run([sys.executable, "-c", code, loader], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[loader] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["spikedet"]["type"] == results["ultralytics"]["type"] == "SpikeDetectionModel"
    assert results["spikedet"]["out"] == results["ultralytics"]["out"]
    assert sum(len(o) for o in results["spikedet"]["out"]) > 0
