"""IBRA-LIF / I-LIF / LIF against the paper's equations, with hand-computed values."""

import copy
import io
import pickle

import pytest
import torch

from spikedet.snn.neurons import IBRALIF, ILIF, LIF, make_neuron


def t1(*values, dtype=torch.float32):
    """A [T=1, n] tensor."""
    return torch.tensor([list(values)], dtype=dtype)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"D": -1}, "D must be"), ({"N": 0}, "N must be"), ({"D": float("nan")}, "D must be"),
     ({"T": 0}, "T must be"), ({"alpha": float("inf")}, "alpha must be"), ({"L": 0}, "L must be"),
     ({"L": 100, "D": 5.11}, "does not equal")],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IBRALIF(**kwargs)


def test_make_neuron_from_yaml_spec():
    n = make_neuron({"type": "ILIF", "D": 4, "T": 2})
    assert isinstance(n, ILIF) and n.L == 4 and n.T == 2
    with pytest.raises(ValueError, match="unknown neuron type 'XLIF'"):
        make_neuron({"type": "XLIF"})
    with pytest.raises(ValueError, match="bad parameters for neuron IBRALIF"):
        make_neuron({"type": "IBRALIF", "bogus": 1})


def test_ibra_lif_fire_hand_values():
    n = IBRALIF(D=5.11, N=100)
    x = t1(-3.0, -0.004, 0.0, 0.004, 0.006, 0.01, 1.234, 2.5, 5.11, 5.2, 100.0)
    # round(U*N) clipped to [0, 511], divided by 100
    expected_codes = [0, 0, 0, 0, 1, 1, 123, 250, 511, 511, 511]
    assert n.codes(x)[0].tolist() == expected_codes
    assert torch.allclose(n(x)[0], torch.tensor(expected_codes, dtype=torch.float32) / 100)


def test_outputs_lie_on_the_one_over_N_grid_and_clip_at_D():
    n = IBRALIF(D=1.5, N=10)  # codes 0..15
    x = torch.linspace(-2, 3, 5001)[None]
    out = n(x)
    codes = out * 10
    assert torch.equal(codes, codes.round())  # multiples of 1/N
    assert out.min() == 0 and out.max() == pytest.approx(1.5)
    assert set(n.codes(x).unique().tolist()) == set(range(16))


def test_rounding_ties_go_to_even():
    n = IBRALIF(D=5.11, N=100)
    # U*N exactly on .5 (exact binary fractions): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
    x = t1(0.5, 1.5, 2.5, 3.5) / 100
    u = torch.tensor([0.5, 1.5, 2.5, 3.5])
    exact = (x[0] * 100 == u).tolist()
    got = n.codes(x)[0].tolist()
    for ok, g, want in zip(exact, got, [0, 2, 2, 4]):
        if ok:  # only where the scaled input is exactly a tie in float32
            assert g == want
    ilif = ILIF(D=4)
    assert ilif.codes(t1(0.5, 1.5, 2.5, 3.5))[0].tolist() == [0, 2, 2, 4]


def test_ilif_is_integer_clip_and_lif_is_a_threshold():
    ilif = ILIF(D=4)
    assert ilif(t1(-1.0, 0.4, 0.6, 2.2, 3.7, 9.0))[0].tolist() == [0, 0, 1, 2, 4, 4]
    lif = LIF()
    assert lif(t1(-1.0, 0.0, 0.999, 1.0, 1.7, 50.0))[0].tolist() == [0, 0, 0, 1, 1, 1]


def test_straight_through_window_is_inclusive_and_exact():
    n = IBRALIF(D=5.11, N=100)
    top = torch.tensor(511, dtype=torch.float32) / 100  # D as float32
    above = torch.nextafter(top, torch.tensor(10.0))
    below0 = torch.nextafter(torch.tensor(0.0), torch.tensor(-1.0))
    x = torch.stack([below0, torch.tensor(0.0), torch.tensor(-0.0), torch.tensor(0.003),
                     torch.tensor(2.0), top, above, torch.tensor(-5.0), torch.tensor(7.0)])[None]
    x.requires_grad_(True)
    n(x).backward(torch.arange(1.0, 10.0)[None])
    assert x.grad[0].tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0]


def test_gradient_window_for_ilif_and_lif():
    for neuron, inside, outside in [(ILIF(D=4), [0.0, 2.0, 4.0], [-0.1, 4.01]), (LIF(), [0.0, 0.5, 1.0], [-0.1, 1.2])]:
        x = t1(*(inside + outside)).requires_grad_(True)
        neuron(x).sum().backward()
        assert x.grad[0].tolist() == [1.0] * len(inside) + [0.0] * len(outside)


def test_backward_saves_only_a_one_byte_mask():
    n = IBRALIF()
    saved = []

    def pack(t):
        saved.append((t.dtype, t.numel()))
        return t

    x = torch.randn(1, 2, 3, 8, 8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        n(x).sum().backward()
    assert saved == [(torch.uint8, x.numel())]


def test_half_inputs_are_quantized_in_float32():
    n = IBRALIF()
    # 0.015 and 0.045 round to 0.02 and 0.04 in float16 arithmetic, to 0.01 and 0.05 in float32
    x = t1(1.234, 5.2, -1.0, 0.015, 0.045, dtype=torch.float16)
    out = n(x)
    assert out.dtype == torch.float16
    assert torch.allclose(out.float(), t1(1.23, 5.11, 0.0, 0.01, 0.05), atol=2e-3)


def test_multi_step_dynamics_with_soft_reset():
    n = IBRALIF(D=5.11, N=100, T=3, alpha=0.25)
    x = torch.tensor([[1.234], [0.5], [-0.2]])  # I[t]
    # t0: U=1.234 -> O=1.23; t1: U=0.25*(1.234-1.23)+0.5=0.501 -> O=0.50
    # t2: U=0.25*(0.501-0.50)-0.2=-0.19975 -> O=0
    out = n(x)
    assert torch.allclose(out[:, 0], torch.tensor([1.23, 0.50, 0.0]), atol=1e-6)
    assert torch.allclose(n.membrane(x)[:, 0], torch.tensor([1.234, 0.501, -0.19975]), atol=1e-6)
    assert n.codes(x)[:, 0].tolist() == [123, 50, 0]


def test_reset_is_detached_but_leak_carries_gradient():
    n = IBRALIF(D=5.11, N=100, T=2, alpha=0.25)
    x = torch.tensor([[1.0], [1.0]], requires_grad=True)
    n(x)[1].sum().backward()
    # O[1] = q(0.25 * (U0 - O0.detach()) + I1): dO1/dI0 = alpha, dO1/dI1 = 1
    assert x.grad[:, 0].tolist() == [0.25, 1.0]


def test_no_state_leaks_between_calls_or_samples():
    n = IBRALIF(T=4)
    a, b = torch.rand(4, 2, 5) * 3, torch.rand(4, 2, 5) * 3
    first = n(a)
    n(b)
    assert torch.equal(n(a), first)
    both = n(torch.cat([a, b], dim=1))
    assert torch.equal(both[:, :2], first)


def test_time_dimension_is_checked():
    with pytest.raises(ValueError, match="first dimension is time T=2"):
        IBRALIF(T=2)(torch.zeros(3, 4))


def test_neuron_spike_planes_from_inputs():
    n = IBRALIF(D=5.11, N=100)
    x = t1(0.05, 5.11)  # codes 5 = 0b101 and 511 = all nine bits
    planes = n.spike_planes(x)
    assert planes.shape == (9, 1, 2)
    assert planes[:, 0, 0].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0]
    assert planes[:, 0, 1].tolist() == [1] * 9


def test_zero_offset_and_channel_scale():
    n = IBRALIF(L=63, N=10, zero=8, scale=torch.tensor([1.0, 2.0]))
    x = torch.tensor([[[-0.5, -0.5], [0.0, 0.0], [1.23, 1.23], [9.0, 9.0]]])  # [T=1, B=4, C=2]
    q = n.codes(x)[0]
    # channel 0: q = round(U*10 + 8); channel 1: q = round(U/2*10 + 8)
    assert q[:, 0].tolist() == [3, 8, 20, 63]
    assert q[:, 1].tolist() == [6, 8, 14, 53]
    values = n(x)[0]
    assert torch.allclose(values[:, 0], (q[:, 0] - 8) / 10)
    assert torch.allclose(values[:, 1], 2 * (q[:, 1] - 8) / 10)
    x.requires_grad_(True)
    n(x).sum().backward()
    # window: -0.8*s <= U <= 5.5*s
    assert x.grad[0].tolist() == [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]


@pytest.mark.parametrize("neuron", [IBRALIF(), ILIF(), LIF(T=2), IBRALIF(L=31, N=10, zero=4, scale=torch.ones(3))])
def test_deepcopy_and_pickle_round_trips(neuron):
    x = torch.randn(neuron.T, 2, 3, 4, 4) * 3
    for clone in (copy.deepcopy(neuron), pickle.loads(pickle.dumps(neuron))):
        assert type(clone) is type(neuron) and clone.code == neuron.code
        assert torch.equal(clone(x), neuron(x))
    buffer = io.BytesIO()
    torch.save(neuron, buffer)
    buffer.seek(0)
    assert torch.equal(torch.load(buffer, weights_only=False)(x), neuron(x))
