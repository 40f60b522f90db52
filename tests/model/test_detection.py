"""SpikeDetectionModel: re-parameterization exact in float64, merged convs remember their trained cost."""

import copy

import torch
from torch import nn

from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.conv import SpikeConv
from spikedet.nn.layers import SpikingConv


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


def test_with_neuron_keeps_the_weights_and_switches_every_neuron():
    from spikedet.model.builder import load_model_cfg

    cfg = {**load_model_cfg("spikeyolo-t.yaml"), "neuron": {"type": "ILIF", "D": 4, "T": 1}}
    ilif = SpikeDetectionModel(cfg, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    # IBRA-LIF with D=4, N=1 fires the same values (codes 0..4, sent as 3 bit planes instead of 4 unary steps)
    same = ilif.with_neuron({"type": "IBRALIF", "D": 4, "N": 1}).eval()
    assert {type(n).__name__ for _, n in same.neurons()} == {"IBRALIF"}
    assert torch.equal(same.state_dict()["model.1.unit.body.weight"], ilif.state_dict()["model.1.unit.body.weight"])
    with torch.no_grad():
        assert torch.equal(ilif(x)[0], same(x)[0])
        paper = ilif.with_neuron({"type": "IBRALIF", "D": 5.11, "N": 100}).eval()  # the paper's: another function
        assert not torch.allclose(ilif(x)[0], paper(x)[0])
    assert all(n.L == 511 and n.T == 1 for _, n in paper.neurons())


def test_the_fused_summary_explains_its_parameter_count(caplog):
    """Re-parameterizing merges chains into dense 3x3 convs: more parameters, the same function, said so."""
    import logging

    from spikedet.model.detection import SpikeDetectionModel

    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval()
    trained = sum(p.numel() for p in model.parameters())
    logger = logging.getLogger("ultralytics")
    logger.addHandler(caplog.handler)
    try:
        model.fuse(verbose=True, imgsz=64)
    finally:
        logger.removeHandler(caplog.handler)
    merged = sum(p.numel() for p in model.parameters())
    assert merged > trained
    assert f"{merged:,} parameters run where {trained:,} were trained" in caplog.text
