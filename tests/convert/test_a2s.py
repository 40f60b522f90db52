"""ANN-to-SNN conversion as library functions: calibration, the summed-groups rule, the neurons it builds."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikedet.convert.a2s import SILU_MIN, A2SConfig, activation_sites, calibrate, convert_ann, summed_groups
from spikedet.errors import SpikedetError
from spikedet.nn.yolov5 import Bottleneck, V5Conv
from spikedet.snn.neurons import A2SNeuron
from tests.support.networks import with_real_batchnorm


def small_ann(seed: int = 0) -> nn.Module:
    """conv -> bottleneck with a shortcut (a residual add) -> conv: the add's two inputs feed the last conv."""
    torch.manual_seed(seed)
    return with_real_batchnorm(nn.Sequential(V5Conv(3, 8, 3, 2), Bottleneck(8, 8), V5Conv(8, 4, 1)).eval())


def silu_outputs(net: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every SiLU output of ``net`` on ``images``, flattened, collected independently of :func:`calibrate`."""
    seen: dict[str, torch.Tensor] = {}
    handles = [m.act.register_forward_hook(lambda mod, a, out, name=name: seen.__setitem__(name, out.flatten()))
               for name, m in activation_sites(net)]
    with torch.no_grad():
        net(images)
    for h in handles:
        h.remove()
    return seen


IMAGES = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_calibration_takes_the_percentile_of_each_layers_silu_outputs():
    net = small_ann()
    stats = calibrate(net, IMAGES, percentile=99.0, max_samples=10**9)  # room for every value: nothing sampled away
    outputs = silu_outputs(net, IMAGES)
    assert set(stats) == set(outputs) == {"0", "1.cv1", "1.cv2", "2"}
    for name, values in outputs.items():
        assert stats[name]["p"] == pytest.approx(float(torch.quantile(values, 0.99)), rel=1e-6)
        assert stats[name]["max"] == pytest.approx(float(values.max()))
        assert stats[name]["mean"] == pytest.approx(float(values.mean()), rel=1e-5)
        assert stats[name]["sample"].numel() == values.numel()
    assert len({round(s["p"], 6) for s in stats.values()}) == 4  # four different ranges


def test_calibration_needs_silu_activations():
    with pytest.raises(SpikedetError, match="no SiLU"):
        calibrate(nn.Sequential(nn.Conv2d(3, 3, 1)), IMAGES)


def test_summed_trains_form_one_group():
    net = small_ann()
    snn = convert_ann(net, calibrate(net, IMAGES), A2SConfig(), IMAGES[:1])
    # the shortcut adds the first conv's spikes to the bottleneck's: the last conv receives their sum
    assert summed_groups(snn, IMAGES[:1]) == [{"0.act", "1.cv2.act"}]


def test_neurons_follow_the_config_and_summed_neurons_share_n():
    net = small_ann()
    stats = calibrate(net, IMAGES, max_samples=10**9)
    snn = convert_ann(net, stats, A2SConfig(encoding="naf", bits=6, rest="zero"), IMAGES[:1])
    assert all(isinstance(snn.get_submodule(site).act, A2SNeuron) for site in stats) and not activation_sites(snn)
    assert activation_sites(net)  # the ANN itself is left as it was
    own_n = {site: (2**6 - 1) / (stats[site]["p"] - SILU_MIN) for site in stats}
    codes = {site: snn.get_submodule(site).act.code for site in stats}
    shared = min(own_n["0"], own_n["1.cv2"])
    assert codes["0"].n == pytest.approx(shared) and codes["1.cv2"].n == pytest.approx(shared)
    for site in ("1.cv1", "2"):
        assert codes[site].n == pytest.approx(own_n[site])
    for site, code in codes.items():
        zero = math.ceil(-SILU_MIN * code.n)  # just enough codes below zero for SiLU's minimum
        assert code.zero == zero and code.levels == zero + math.ceil(stats[site]["p"] * code.n)
        assert code.encoding == "naf" and code.rest is None


def test_rest_code_is_the_most_frequent_code_of_the_calibration_sample():
    net = small_ann()
    stats = calibrate(net, IMAGES, max_samples=10**9)
    snn = convert_ann(net, stats, A2SConfig(encoding="signed", n=20.0, rest="mode"), IMAGES[:1])
    for site, s in stats.items():
        code = snn.get_submodule(site).act.code
        counts = torch.bincount(torch.round(s["sample"] * code.n + code.zero).clamp(0, code.levels).long())
        assert code.rest == int(counts.argmax())


def test_a_fine_grid_reproduces_the_ann():
    net = small_ann()
    snn = convert_ann(net, calibrate(net, IMAGES, percentile=100.0), A2SConfig(n=1000.0, rest="zero"), IMAGES[:1])
    with torch.no_grad():
        ann_out, snn_out = net(IMAGES), snn(IMAGES)
    assert float((ann_out - snn_out).abs().max()) < 0.01 * float(ann_out.abs().max())
    assert not torch.equal(ann_out, snn_out)  # quantized, not the same network


def test_calibration_that_does_not_match_the_model_is_refused():
    net = small_ann()
    stats = calibrate(net, IMAGES)
    del stats["2"]
    with pytest.raises(SpikedetError, match="does not match"):
        convert_ann(net, stats, A2SConfig(), IMAGES[:1])
