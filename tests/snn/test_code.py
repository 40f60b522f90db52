"""Spike codes: L = D*N, the code description, bit planes and thermometer planes."""

import math

import pytest
import torch

from spikedet.snn.code import (
    SpikeCode,
    bit_planes,
    levels_from_range,
    popcount,
    unary_planes,
)
from spikedet.snn.neurons import IBRALIF, ILIF


@pytest.mark.parametrize(
    "D,N,L,B",
    [(5.11, 100, 511, 9), (1.5, 10, 15, 4), (3.1, 10, 31, 5), (6.3, 10, 63, 6), (1.27, 100, 127, 7),
     (2.55, 100, 255, 8), (1.023, 1000, 1023, 10), (2.047, 1000, 2047, 11), (8.191, 1000, 8191, 13)],
)
def test_paper_settings_give_whole_codes(D, N, L, B):
    neuron = IBRALIF(D=D, N=N)
    assert neuron.L == L and neuron.B == B
    assert neuron.D == pytest.approx(D)


def test_float_rounding_of_D_times_N_is_accepted_but_not_a_fraction():
    assert 5.11 * 100 != 511  # the trap the integer L avoids
    assert levels_from_range(5.11, 100) == 511
    assert int(2.55 * 100) == 254 and levels_from_range(2.55, 100) == 255
    with pytest.raises(ValueError, match=r"nearest valid: D=5\.11 \(L=511\) or D=5\.12 \(L=512\)"):
        IBRALIF(D=5.115, N=100)
    with pytest.raises(ValueError, match="D=4 \\(L=4\\)"):
        ILIF(D=4.4)


def test_code_description_validates_and_derives():
    code = SpikeCode(511, 100.0)
    assert (code.bits, code.planes, code.d, code.low) == (9, 9, 5.11, 0.0)
    assert SpikeCode(4, 1.0, encoding="unary").planes == 4
    offset = SpikeCode(600, 100.0, zero=32)
    assert offset.d == pytest.approx(5.68) and offset.low == pytest.approx(-0.32)
    with pytest.raises(ValueError, match="zero must be"):
        SpikeCode(10, 1.0, zero=11)
    with pytest.raises(ValueError, match="encoding"):
        SpikeCode(10, 1.0, encoding="ternary")


@pytest.mark.parametrize("D,N", [(5.11, 100), (1.5, 10), (1.023, 1000), (8.191, 1000)])
def test_bit_planes_reconstruct_every_code(D, N):
    n = IBRALIF(D=D, N=N)
    q = torch.arange(0, n.L + 1)
    planes = bit_planes(q, n.B)
    assert planes.shape == (n.B, n.L + 1) and planes.dtype == torch.uint8
    assert set(planes.unique().tolist()) <= {0, 1}
    weights = (2 ** torch.arange(n.B)).view(-1, 1)
    assert torch.equal((planes.long() * weights).sum(0), q)
    assert torch.equal(popcount(q), planes.sum(0).int())
    # b = 0 is the least significant plane (the paper's b = 1..B is off by one)
    assert bit_planes(torch.tensor([1]), n.B)[:, 0].tolist() == [1] + [0] * (n.B - 1)


def test_unary_planes_are_thermometer_codes():
    q = torch.tensor([0, 1, 3, 4])
    planes = unary_planes(q, 4)
    assert planes.T.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert torch.equal(ILIF(D=4).code.spike_count(q), q.int())


def test_bits_match_bit_length():
    for L in (1, 2, 3, 255, 256, 511, 512, 5885):
        assert SpikeCode(L, 1.0).bits == math.floor(math.log2(L)) + 1


@pytest.mark.parametrize(
    ("levels", "n", "merged"),
    [
        (511, 100.0, 202),  # IBRA-LIF: 2.01 and 2.02 round to one bfloat16 (spacing 1/64 in [2, 4))
        (255, 100.0, 202),  # fewer than 256 codes, yet merged: N = 100 is not a power of two
        (200, 100.0, None),
        (256, 1.0, None),  # integers up to 256 are exact in bfloat16 ...
        (257, 1.0, 257),  # ... 257 is not
        (511, 64.0, 257),  # a power-of-two N keeps q / N as exact as q
        (4, 1.0, None),  # I-LIF, SpikeYOLO's neuron
    ],
)
def test_bfloat16_merges_codes_where_its_8_significant_bits_run_out(levels, n, merged):
    code = SpikeCode(levels, n)
    assert code.first_merged_code(torch.bfloat16) == merged
    assert code.first_merged_code(torch.float16) is None  # 11 bits: every code up to 2048 apart
    if merged is not None:  # the definition: that code's value equals the one below it in bfloat16, none before
        values = (torch.arange(levels + 1, dtype=torch.float64) / n).bfloat16()
        assert values[merged] == values[merged - 1]
        assert len(torch.unique(values[:merged])) == merged
