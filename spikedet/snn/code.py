"""Integer spike codes: what a neuron's code ``q`` stands for and how it travels as spikes.

A :class:`SpikeCode` describes the codes of one neuron population: levels ``L`` (codes ``0..L``), the scale
``N`` (codes per unit, IBRA-LIF paper eq. 3), the code that stands for 0 and the spike encoding. The real
value of a code is ``(q - zero) / N`` (times an optional per-channel scale the neuron carries).

Encodings and their spike planes (``spike_planes``; ``spike_count`` counts the nonzero digits):

- ``binary``: bit planes ``s_b = (q >> b) & 1``, ``b = 0..B-1``, ``B = bit_length(L)`` (IBRA-LIF, eq. 12);
- ``unary``: ``L`` thermometer steps ``[q > d]`` (I-LIF, LIF);
- ``signed``: bit planes of ``|q - rest|`` with a sign (ternary spikes);
- ``naf``: ``q - rest`` in non-adjacent form, digits in {-1, 0, +1}.

    >>> import torch
    >>> code = SpikeCode(levels=511, n=100.0)       # IBRA-LIF's default: 9 bit planes
    >>> code.bits, code.d
    (9, 5.11)
    >>> code.spike_count(torch.tensor([0, 1, 7, 511])).tolist()
    [0, 1, 3, 9]
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "ENCODINGS",
    "SpikeCode",
    "bit_planes",
    "fmt_number",
    "levels_from_range",
    "naf_masks",
    "popcount",
    "unary_planes",
]

Encoding = Literal["binary", "unary", "signed", "naf"]


def levels_from_range(D: float, N: float) -> int:
    """Return the integer maximum code ``L = D * N``, or raise if ``D * N`` is not a whole number.

    ``D * N`` is accepted when it is within float rounding of an integer (relative 1e-9), so that
    decimal inputs such as ``D=5.11, N=100`` work.
    """
    if not (isinstance(N, (int, float)) and math.isfinite(N) and N > 0):
        raise ValueError(f"N must be a positive finite number, got {N!r}")
    if not (isinstance(D, (int, float)) and math.isfinite(D) and D > 0):
        raise ValueError(f"D must be a positive finite number, got {D!r}")
    product = D * N
    levels = round(product)
    if abs(product - levels) > 1e-9 * max(1.0, abs(product)) or levels < 1:
        lower, upper = max(math.floor(product), 1), max(math.ceil(product), 1)
        options = sorted({lower, upper})
        hint = " or ".join(f"D={fmt_number(level / N)} (L={level})" for level in options)
        raise ValueError(
            f"D*N must be a whole number of codes: D={D!r} x N={N!r} = {product!r}; nearest valid: {hint}"
        )
    return int(levels)


@functools.lru_cache(maxsize=64)
def _first_merged_code(levels: int, n: float, zero: int, dtype: torch.dtype) -> int | None:
    values = ((torch.arange(levels + 1, dtype=torch.float64) - zero) / n).to(dtype)
    merged = torch.nonzero(values[1:] == values[:-1])
    return int(merged[0]) + 1 if len(merged) else None


def fmt_number(x: float) -> str:
    """A number as people write it (up to 10 significant digits), for messages."""
    return f"{x:.10g}"


@dataclass(frozen=True)
class SpikeCode:
    """How a neuron's integer code ``q`` in ``0..levels`` stands for a real value, and how it is sent.

    Attributes:
        levels: ``L``, the largest code.
        n: ``N``, codes per unit of membrane potential (range alignment).
        zero: the code that stands for 0 (0 for IBRA-LIF / I-LIF / LIF).
        encoding: how a code travels as spikes at inference:

            - ``"binary"``: the bit planes of ``q`` (IBRA-LIF); spikes = popcount(q);
            - ``"unary"``: ``q`` thermometer steps (I-LIF, LIF); spikes = q;
            - ``"signed"``: the bit planes of ``|q - zero|`` on a positive or a negative train (two trains,
              ternary spikes); spikes = popcount(|q - zero|); a value of 0 sends nothing;
            - ``"naf"``: ``q - zero`` in non-adjacent form, digits in {-1, 0, +1} per plane (ternary spikes,
              the fewest nonzero digits of any signed-binary form); spikes = number of nonzero digits.
        rest: for signed encodings, the code that is sent as no spikes at all (default: ``zero``). Sending
            ``q - rest`` instead of ``q - zero`` moves the free point to where most activations sit (for
            SiLU, near its minimum); the receiving layer adds the constant ``(rest - zero) / N`` back once.
    """

    levels: int
    n: float = 1.0
    zero: int = 0
    encoding: Encoding = "binary"
    rest: int | None = None

    def __post_init__(self):
        if not isinstance(self.levels, int) or self.levels < 1:
            raise ValueError(f"levels (L) must be an integer >= 1, got {self.levels!r}")
        if not (math.isfinite(self.n) and self.n > 0):
            raise ValueError(f"n (N) must be a positive finite number, got {self.n!r}")
        if not isinstance(self.zero, int) or not 0 <= self.zero <= self.levels:
            raise ValueError(f"zero must be an integer code in 0..{self.levels}, got {self.zero!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if self.rest is not None:
            if self.encoding not in ("signed", "naf"):
                raise ValueError("a rest code needs a signed encoding ('signed' or 'naf')")
            if not isinstance(self.rest, int) or not 0 <= self.rest <= self.levels:
                raise ValueError(f"rest must be an integer code in 0..{self.levels}, got {self.rest!r}")

    def first_merged_code(self, dtype: torch.dtype) -> int | None:
        """The smallest code whose value ``(q - zero) / N``, rounded to ``dtype``, equals that of the code below
        it; None when ``dtype`` tells every code apart. bfloat16 keeps 8 significant bits: no code above 256, and
        with an ``N`` that is not a power of two codes merge sooner (IBRA-LIF's 2.02 and 2.01 are one bfloat16).

            >>> SpikeCode(levels=511, n=100.0).first_merged_code(torch.bfloat16)
            202
            >>> SpikeCode(levels=511, n=100.0).first_merged_code(torch.float16) is None
            True
        """
        return _first_merged_code(self.levels, self.n, self.zero, dtype)

    @property
    def bits(self) -> int:
        """Number of binary bit planes ``B = bit_length(L)``."""
        return self.levels.bit_length()

    @property
    def signed(self) -> bool:
        """True when spikes carry a sign (the code sent is ``q - zero``)."""
        return self.encoding in ("signed", "naf")

    @property
    def offset(self) -> int:
        """The code subtracted before sending: the integer sent is ``q - offset`` (0 for unsigned encodings)."""
        if not self.signed:
            return 0
        return self.zero if self.rest is None else self.rest

    @property
    def planes(self) -> int:
        """Spike planes per timestep at inference."""
        if self.encoding == "unary":
            return self.levels
        if self.encoding == "binary":
            return self.bits
        span = max(self.levels - self.offset, self.offset).bit_length()
        return span + 1 if self.encoding == "naf" else span

    @property
    def d(self) -> float:
        """``D``, the largest value the neuron emits (``(L - zero) / N``)."""
        return (self.levels - self.zero) / self.n

    @property
    def low(self) -> float:
        """The smallest value the neuron emits (``-zero / N``; 0 unless there is a zero offset)."""
        return -self.zero / self.n

    def plane_weights(self) -> list[float]:
        """The weight of each spike plane: ``2**b`` for bit planes, 1 for unary steps."""
        return [1.0] * self.levels if self.encoding == "unary" else [float(2**b) for b in range(self.planes)]

    def spike_planes(self, q: Tensor) -> Tensor:
        """The spike planes of codes ``q`` on a new leading axis: 0/1 (uint8) for binary and unary codes,
        -1/0/+1 (int8) for signed and NAF codes. ``sum_p weight_p * plane_p`` is the integer sent,
        ``q - offset``."""
        if self.encoding == "binary":
            return bit_planes(q, self.bits)
        if self.encoding == "unary":
            return unary_planes(q, self.levels)
        t = q.to(torch.int32) - self.offset
        sign = torch.sign(t).to(torch.int8)
        magnitude = t.abs()
        if self.encoding == "signed":
            return bit_planes(magnitude, self.planes).to(torch.int8) * sign
        pos, neg = naf_masks(magnitude)
        return (bit_planes(pos, self.planes).to(torch.int8) - bit_planes(neg, self.planes).to(torch.int8)) * sign

    def spike_count(self, q: Tensor) -> Tensor:
        """Number of spikes per element of ``q``."""
        if self.encoding == "binary":
            return popcount(q)
        if self.encoding == "unary":
            return q.to(torch.int32)
        magnitude = (q.to(torch.int32) - self.offset).abs()
        if self.encoding == "signed":
            return popcount(magnitude)
        pos, neg = naf_masks(magnitude)
        return popcount(pos) + popcount(neg)

    def spike_table(self) -> Tensor:
        """Spikes sent for each code ``0..L`` (float64), for counting from code histograms."""
        return self.spike_count(torch.arange(self.levels + 1)).double()

    def as_dict(self) -> dict:
        return asdict(self)


ENCODINGS = ("binary", "unary", "signed", "naf")


def naf_masks(x: Tensor) -> tuple[Tensor, Tensor]:
    """Bit masks ``(plus, minus)`` of the non-adjacent form of non-negative integers: ``x = plus - minus``."""
    x = x.to(torch.int64)
    half = x >> 1
    three_half = x + half
    carry = half ^ three_half
    return three_half & carry, half & carry


def bit_planes(q: Tensor, bits: int) -> Tensor:
    """Binary planes ``s_b = (q >> b) & 1`` for ``b = 0..bits-1`` as uint8, shape ``[bits, *q.shape]``."""
    qi = q.to(torch.int32)
    shifts = torch.arange(bits, device=q.device, dtype=torch.int32).view(-1, *([1] * q.dim()))
    return ((qi.unsqueeze(0) >> shifts) & 1).to(torch.uint8)


def unary_planes(q: Tensor, levels: int) -> Tensor:
    """Thermometer planes ``s_d = [q > d]`` for ``d = 0..levels-1`` as uint8 (``q`` ones then zeros)."""
    steps = torch.arange(levels, device=q.device, dtype=q.dtype).view(-1, *([1] * q.dim()))
    return (q.unsqueeze(0) > steps).to(torch.uint8)


def popcount(q: Tensor) -> Tensor:
    """Number of set bits of each (non-negative) integer code, as int32."""
    x = q.to(torch.int32)
    count = torch.zeros_like(x)
    while True:
        nonzero = x != 0
        if not bool(nonzero.any()):
            return count
        count += (x & 1)
        x = x >> 1
