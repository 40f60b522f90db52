"""The bit-plane converter: equivalence with the integer model, both execution paths, general spike inputs."""

import copy

import pytest
import torch

from spikedet.convert import bitplane, verify
from spikedet.errors import SpikedetError
from spikedet.nn.mode import set_spike_mode
from spikedet.snn.code import SpikeCode
from spikedet.snn.neurons import IBRALIF, ILIF
from tests.support.networks import Graph, TwoLayer


def test_hand_checkable_two_layer_network():
    net = TwoLayer(IBRALIF(D=5.11, N=100)).eval()
    conv1, conv2 = net.model[1].body, net.model[2].body
    with torch.no_grad():
        conv1.weight.zero_()
        conv1.bias.copy_(torch.tensor([0.05, 5.2]))  # codes 5 (0b101) and 511 (nine ones) everywhere
        conv2.weight.copy_(torch.tensor([[[[2.0]], [[0.5]]]]))
        conv2.bias.fill_(0.1)
    x = torch.zeros(1, 3, 4, 4)
    expected = 2.0 * 0.05 + 0.5 * 5.11 + 0.1
    assert torch.allclose(net(x), torch.full((1, 1, 4, 4), expected))
    converted = bitplane.convert(net, x)
    # W/N folded into the weights: the conv consumes integer codes
    assert torch.allclose(converted.model[2].body.weight.flatten(), torch.tensor([0.02, 0.005]))
    for path in ("integer", "bitplane"):
        set_spike_mode(converted, path)
        assert torch.allclose(converted(x), torch.full((1, 1, 4, 4), expected), atol=1e-6)


def test_bias_is_added_once_after_the_planes():
    net = TwoLayer(IBRALIF(D=5.11, N=100)).eval()
    with torch.no_grad():
        net.model[1].body.weight.zero_()
        net.model[1].body.bias.copy_(torch.tensor([5.11, 5.11]))  # all 9 planes set
        net.model[2].body.weight.fill_(1.0)
        net.model[2].body.bias.fill_(100.0)
    x = torch.zeros(1, 3, 2, 2)
    converted = set_spike_mode(bitplane.convert(net, x), "bitplane")
    # adding the bias per plane (a known SpikeYOLO bug) would give 2 * 5.11 + 9 * 100
    assert torch.allclose(converted(x), torch.full((1, 1, 2, 2), 2 * 5.11 + 100.0))


@pytest.mark.parametrize(
    "codes",
    [
        (SpikeCode(300, 100.0, 0, "binary"), SpikeCode(300, 100.0, 0, "binary"), SpikeCode(40, 10.0, 0, "binary")),
        (SpikeCode(330, 100.0, 30, "binary"), SpikeCode(400, 100.0, 30, "binary"), SpikeCode(45, 10.0, 3, "binary")),
        (SpikeCode(330, 100.0, 30, "signed"), SpikeCode(400, 100.0, 30, "signed"), SpikeCode(45, 10.0, 3, "signed")),
        (SpikeCode(330, 100.0, 30, "naf"), SpikeCode(400, 100.0, 30, "naf"), SpikeCode(45, 10.0, 3, "naf")),
    ],
    ids=["plain", "zero-offset", "signed", "naf"],
)
def test_sums_concats_and_zero_offsets_are_exact_in_float64(codes):
    net = Graph(*codes).double().eval()
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    converted = bitplane.convert(net, x[:1])
    head = converted.head
    assert [t.offset for t in head.conversion.terms] == [0, 0, 4]  # two summed trains, one concatenated
    for path in ("integer", "bitplane"):
        v = verify.verify(net, converted, x, path)
        assert v.code_mismatches == 0 and v.codes_total > 0
        assert v.max_relative_error < 1e-9, (path, v)


def test_constant_code_terms_follow_weight_changes():
    """The zero-offset correction is cached per input size; loading new weights must not reuse a stale one."""
    codes = (SpikeCode(330, 100.0, 30, "binary"), SpikeCode(400, 100.0, 30, "binary"), SpikeCode(45, 10.0, 3, "binary"))
    x = torch.rand(1, 3, 9, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    first = Graph(*codes).double().eval()
    other = Graph(*codes).double().eval()
    with torch.no_grad():
        for m in (other.mid, other.side, other.head):
            m.weight.mul_(-0.7)
            m.bias.add_(0.3)
    converted = bitplane.convert(first, x)
    expected = bitplane.convert(other, x)
    for path in ("integer", "bitplane"):
        set_spike_mode(converted, path)
        set_spike_mode(expected, path)
        with torch.no_grad():
            converted(x)  # fills the cache with the first weights
            converted.load_state_dict(expected.state_dict())
            assert torch.allclose(converted(x), expected(x), rtol=1e-9, atol=1e-12), path


def test_summed_trains_with_different_scales_are_refused():
    net = Graph(SpikeCode(300, 100.0), SpikeCode(30, 10.0), SpikeCode(40, 10.0)).eval()
    with pytest.raises(SpikedetError, match="different scales are summed"):
        bitplane.convert(net, torch.rand(1, 3, 8, 8))


def test_unary_neurons_convert_too():
    net = TwoLayer(ILIF(D=4), k=3).double().eval()
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64) * 3
    with torch.no_grad():
        net.model[1].body.weight.uniform_(0, 1)
    converted = bitplane.convert(net, x)
    v = verify.verify(net, converted, x, "bitplane")
    assert v.code_mismatches == 0 and v.max_relative_error < 1e-9
    set_spike_mode(converted, "bitplane")
    with torch.no_grad():  # converted models deep-copy (Ultralytics' EMA and predictors do), conversion included
        assert torch.equal(copy.deepcopy(converted)(x), converted(x))
