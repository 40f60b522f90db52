"""Cross-check: spikedet's operation counts against SpikingJelly 2.0's op counters on the same model and images.

SpikingJelly's ``MACCounter`` counts a conv's dense MACs; its ``SynOpCounter`` counts the synaptic operations a
0/1 spike tensor drives through a conv, exactly per position (borders included). spikedet counts
``ACs = MACs x mean spikes per input element``. So each conv's bit planes (for signed and NAF codes, the
magnitude of each digit: one AC adds or subtracts a weight) are fed to SpikingJelly's counters, and per layer:

- MACs must be equal;
- SpikingJelly's exact count must lie where spikedet's spike count puts it: every spike drives between the
  fewest and the most output positions any input element reaches (rigorous, any size);
- on maps of at least 16 x 16, spikedet's ACs must agree within the layer's border share (the share of
  (output position, kernel tap) pairs that fall on zero padding, which the mean-rate estimate charges and an
  exact count does not) plus 1 %.

Needs the optional ``crosscheck`` extra (``pip install 'spikedet[crosscheck]'``; SpikingJelly needs
Python >= 3.11); skipped, saying so, without it. CI installs it.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

op_counter = pytest.importorskip(
    "spikingjelly.activation_based.op_counter",
    reason="SpikingJelly 2.0 is not installed (pip install 'spikedet[crosscheck]')",
)

from spikedet.convert.bitplane import spiking  # noqa: E402
from spikedet.io.images import default_image, letterbox_tensor, read_image  # noqa: E402
from spikedet.io.weights import load_model  # noqa: E402
from spikedet.measure import energy  # noqa: E402
from spikedet.model.detection import SpikeDetectionModel  # noqa: E402
from spikedet.nn.conv import SpikeConv  # noqa: E402


def conv_inputs(model, image) -> tuple[dict, list]:
    """Run ``image`` through the spiking ``model`` once: spikedet's per-layer report and, per conv on spikes,
    the conv and the trains it received."""
    seen = {}

    def keep(name):
        def hook(conv, args):
            if not isinstance(args[0], torch.Tensor):
                seen[name] = (conv, args[0].terms())
        return hook

    handles = [m.register_forward_pre_hook(keep(n)) for n, m in model.named_modules() if isinstance(m, SpikeConv)]
    try:
        with energy.measure(model) as recorder, torch.no_grad():
            model(image)
    finally:
        for h in handles:
            h.remove()
    layers = {layer.name: layer for layer in recorder.reports()[0].layers}
    return seen, layers


def jelly_counts(conv: SpikeConv, terms) -> tuple[int, int]:
    """SpikingJelly's (MACs, synaptic operations) of ``conv`` on the spike planes of ``terms``."""
    w = conv.weight.detach().float()
    args = (None, conv.stride, conv.padding, conv.dilation, conv.groups)
    first = terms[0][0].codes
    shape = [first.reshape(-1, *first.shape[-3:]).shape[0], conv.in_channels, *first.shape[-2:]]
    macs = op_counter.MACCounter()
    with op_counter.DispatchCounterMode([macs]):
        F.conv2d(torch.randn(shape), w, *args)  # real-valued: MACCounter leaves 0/1 (spike) inputs to SynOps
    synops = op_counter.SynOpCounter()
    with op_counter.DispatchCounterMode([synops]):
        for train, off in terms:
            codes = train.codes.reshape(-1, *train.codes.shape[-3:])
            for plane in train.code.spike_planes(codes):
                x = torch.zeros(shape)
                x[:, off : off + train.channels] = plane.abs().float()  # 0/1: one AC per nonzero digit
                F.conv2d(x, w, *args)
    return macs.get_total(), synops.get_total()


def uses(conv: SpikeConv, hw: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Per axis, how many output positions of ``conv`` read each input index (at a valid tap)."""
    per_axis = []
    for axis in (0, 1):
        size, k, s, p = hw[axis], conv.kernel_size[axis], conv.stride[axis], conv.padding[axis]
        out = (size + 2 * p - k) // s + 1
        count = [0] * size
        for o in range(out):
            for t in range(k):
                i = o * s - p + t
                if 0 <= i < size:
                    count[i] += 1
        per_axis.append(count)
    return per_axis[0], per_axis[1]


def check(model, image):
    """Per conv on spikes: MACs equal; SpikingJelly's exact synaptic operations within what spikedet's spike
    count allows (each spike drives between the fewest and the most output positions any input element
    reaches: rigorous); on maps of at least 16 x 16, spikedet's mean-rate ACs within the border share + 1 %."""
    seen, layers = conv_inputs(model, image)
    assert len(seen) > 10
    tight = 0
    for name, (conv, terms) in seen.items():
        layer = layers[name]
        macs, synops = jelly_counts(conv, terms)
        assert layer.macs == macs, name
        hw = tuple(terms[0][0].codes.shape[-2:])
        rows, cols = uses(conv, hw)
        fan = conv.out_channels // conv.groups
        low, high = min(rows) * min(cols) * fan * layer.spikes, max(rows) * max(cols) * fan * layer.spikes
        assert low <= synops <= high, (name, low, synops, high)
        if min(hw) >= 16:
            out_h, out_w = len(range(0, hw[0] + 2 * conv.padding[0] - conv.kernel_size[0] + 1, conv.stride[0])), \
                len(range(0, hw[1] + 2 * conv.padding[1] - conv.kernel_size[1] + 1, conv.stride[1]))
            pairs = out_h * out_w * conv.kernel_size[0] * conv.kernel_size[1]
            share = 1 - sum(rows) * sum(cols) / pairs  # (position, tap) pairs on padding
            assert math.isclose(layer.acs, synops, rel_tol=share + 0.01), (name, layer.acs, synops, share)
            tight += 1
    assert tight >= 5


def test_shipped_a2s_model_counts_match_spikingjelly_per_layer():
    model = spiking(load_model("yolov5n-a2s.safetensors"))
    check(model, letterbox_tensor(read_image(default_image()), 160)[None])


def test_ibra_lif_model_counts_match_spikingjelly_per_layer():
    torch.manual_seed(0)
    model = spiking(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval())
    check(model, torch.rand(1, 3, 128, 128))
