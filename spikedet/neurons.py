"""Spiking neurons with integer codes: IBRA-LIF, I-LIF and LIF.

Every neuron here follows the same three steps per timestep ``t`` (IBRA-LIF paper, eqs. 1, 3, 10):

    charge:  U[t] = alpha * (U[t-1] - O[t-1]) + I[t]        U[0] = I[0]  (the reset term is detached)
    fire:    q[t] = clip(round(U[t] * N), 0, L)              integer code, L = D * N
             O[t] = q[t] / N                                 what training propagates
    reset:   soft, by subtracting O[t] (inside the next charge)

and trains with the straight-through gradient of eq. 16: ``dO/dU = 1`` where ``0 <= U <= D``, else 0.

At inference a code ``q`` is sent as spikes. IBRA-LIF sends its ``B = bit_length(L)`` bit planes
``s_b = (q >> b) & 1`` for ``b = 0 .. B-1`` (the paper prints ``b = 1 .. B``, an off-by-one), so
``q = sum_b 2**b * s_b`` and the next conv only accumulates. I-LIF (SpikeYOLO's neuron) sends ``q``
as a thermometer code of ``L`` unary steps. LIF is the binary special case ``L = 1`` with threshold 1.

Rounding is ``torch.round``: round half to even, so ``U * N = 0.5 -> 0``, ``1.5 -> 2``, ``2.5 -> 2``.

The integer maximum code ``L`` is the parameter that counts. ``D * N`` must be a whole number within
float rounding (``5.11 * 100 = 511.00000000000006`` is accepted as ``L = 511``); anything else raises a
``ValueError`` naming the nearest valid ``D``.

Example::

    >>> import torch
    >>> from spikedet.neurons import IBRALIF
    >>> neuron = IBRALIF(D=5.11, N=100)          # codes 0..511, 9 bit planes
    >>> x = torch.tensor([[-1.0, 0.004, 0.005, 1.234, 9.0]])   # [T=1, 5]
    >>> neuron(x)
    tensor([[0.0000, 0.0000, 0.0000, 1.2300, 5.1100]])
    >>> neuron.codes(x)
    tensor([[  0,   0,   0, 123, 511]], dtype=torch.int32)

The code of a neuron is described by :class:`SpikeCode` (levels ``L``, scale ``N``, an optional
zero-code offset and the spike encoding) plus an optional per-channel scale on the module, so that
neurons whose code for 0 is not 0 (ANN-to-SNN conversion) or whose range differs per channel use the
same machinery. The real value a code stands for is ``scale * (q - zero) / N``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "SpikeCode",
    "SpikingNeuron",
    "IBRALIF",
    "ILIF",
    "LIF",
    "levels_from_range",
    "bit_planes",
    "unary_planes",
    "popcount",
    "NEURONS",
    "make_neuron",
]

Encoding = Literal["binary", "unary", "signed", "naf"]
Rounding = Literal["nearest", "floor"]


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
        hint = " or ".join(f"D={_fmt(level / N)} (L={level})" for level in options)
        raise ValueError(
            f"D*N must be a whole number of codes: D={D!r} x N={N!r} = {product!r}; nearest valid: {hint}"
        )
    return int(levels)


def _fmt(x: float) -> str:
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


class _FireSTE(torch.autograd.Function):
    """Quantize with a straight-through gradient on the window ``lo <= U <= hi`` (eq. 16).

    Only a 1-byte (uint8 0/1) mask of the window is saved for backward (no float copy of the input); the
    following conv already keeps the output it needs.
    """

    @staticmethod
    def forward(ctx, u: Tensor, neuron: "SpikingNeuron") -> Tensor:
        out, inside = neuron._quantize_with_window(u)
        ctx.save_for_backward(inside)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inside,) = ctx.saved_tensors
        # uint8 -> float then an in-place multiply is the fastest exact masking on CPU (where() and
        # masked_fill() are several times slower there).
        return inside.to(grad.dtype).mul_(grad), None


class SpikingNeuron(nn.Module):
    """A multi-level spiking neuron over inputs shaped ``[T, ...]`` (time first).

    Subclasses only choose the code; the dynamics (charge with leak ``alpha``, fire, detached soft
    reset) and the straight-through gradient are shared. The module holds no membrane state between
    calls: each forward starts from ``U[0] = I[0]``, so nothing leaks from one batch to the next.

    Args:
        code: the integer code (:class:`SpikeCode`).
        T: number of timesteps the input carries on its first dimension.
        alpha: membrane leak per timestep (used when ``T > 1``).
        rounding: ``"nearest"`` (round half to even) or ``"floor"`` (a threshold at each code, LIF).
        scale: optional per-channel scale (channel = dimension 2 of ``[T, B, C, ...]``); the value of a
            code becomes ``scale * (q - zero) / N``.
    """

    def __init__(
        self,
        code: SpikeCode,
        T: int = 1,
        alpha: float = 0.25,
        rounding: Rounding = "nearest",
        scale: Tensor | None = None,
    ):
        super().__init__()
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be an integer >= 1, got {T!r}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        if rounding not in ("nearest", "floor"):
            raise ValueError(f"rounding must be 'nearest' or 'floor', got {rounding!r}")
        self.code = code
        self.T = T
        self.alpha = float(alpha)
        self.rounding = rounding
        self.register_buffer("scale", None if scale is None else torch.as_tensor(scale, dtype=torch.float32))

    # -- parameters derived from the code --------------------------------------------------------
    @property
    def L(self) -> int:
        return self.code.levels

    @property
    def N(self) -> float:
        return self.code.n

    @property
    def D(self) -> float:
        return self.code.d

    @property
    def B(self) -> int:
        return self.code.bits

    def set_code(self, code: SpikeCode, scale: Tensor | None = None) -> None:
        """Replace the code (and per-channel scale) in place, e.g. after calibration."""
        self.code = code
        self.scale = None if scale is None else torch.as_tensor(scale, dtype=torch.float32, device=self._device())

    def spec(self) -> dict:
        """Everything needed to rebuild this neuron (see :func:`neuron_from_spec`), JSON-serializable."""
        return {
            "type": type(self).__name__,
            "code": self.code.as_dict(),
            "T": self.T,
            "alpha": self.alpha,
            "rounding": self.rounding,
            "scale_channels": None if self.scale is None else int(self.scale.numel()),
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "SpikingNeuron":
        neuron = cls.__new__(cls)
        channels = spec.get("scale_channels")
        SpikingNeuron.__init__(
            neuron,
            SpikeCode(**spec["code"]),
            T=spec.get("T", 1),
            alpha=spec.get("alpha", 0.25),
            rounding=spec.get("rounding", "nearest"),
            scale=None if channels is None else torch.ones(channels),
        )
        return neuron

    def _device(self) -> torch.device:
        return self.scale.device if self.scale is not None else torch.device("cpu")

    def extra_repr(self) -> str:
        c = self.code
        text = f"L={c.levels}, N={_fmt(c.n)}, D={_fmt(c.d)}, B={c.bits}, T={self.T}, alpha={self.alpha}"
        if c.zero:
            text += f", zero={c.zero}"
        if c.encoding != "binary":
            text += f", encoding={c.encoding}"
        if self.scale is not None:
            text += ", scale=per-channel"
        return text

    # -- the quantizer ---------------------------------------------------------------------------
    def _channel_scale(self, u: Tensor) -> Tensor | None:
        if self.scale is None:
            return None
        shape = [1] * u.dim()
        shape[2 if u.dim() > 2 else -1] = -1
        return self.scale.to(u.dtype).view(shape)

    def _round(self, x: Tensor) -> Tensor:
        return torch.round(x) if self.rounding == "nearest" else torch.floor(x)

    def _codes_float(self, u: Tensor) -> Tensor:
        """Integer codes of the membrane potential ``u`` as a float tensor (same dtype as ``u``)."""
        c = self.code
        s = self._channel_scale(u)
        x = u / s if s is not None else u
        x = x * c.n
        if c.zero:
            x = x + c.zero
        return self._round(x).clamp_(0, c.levels)

    def _quantize(self, u: Tensor) -> Tensor:
        """The value the neuron emits during training: ``scale * (q - zero) / N``."""
        return self._quantize_with_window(u)[0]

    def _quantize_with_window(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The emitted value and the straight-through window ``lo <= U <= hi`` as a uint8 0/1 mask.

        The window test is ``clamp(U, lo, hi) == U``, exact at both ends (and False for NaN). It is
        computed as a float comparison then narrowed to uint8, faster on CPU than a bool-valued compare.
        """
        c = self.code
        lo, hi = self._window(u)
        clipped = u.clamp(lo, hi)
        inside = torch.eq(clipped, u, out=torch.empty_like(u)).to(torch.uint8)
        if self.scale is None and c.zero == 0 and self.rounding == "nearest":
            # round(clip(U, 0, D) * N) equals clip(round(U * N), 0, L): D = L/N rounds back to L exactly.
            # Three vectorized in-place passes beat torch.round(decimals=k), which is scalar code on CPU.
            return clipped.mul_(c.n).round_().div_(c.n), inside
        q = self._codes_float(u)
        if c.zero:
            q = q - c.zero
        out = q / c.n
        s = self._channel_scale(u)
        return (out * s if s is not None else out), inside

    def _window(self, u: Tensor):
        """Bounds of the straight-through window (eq. 16), as scalars or per-channel tensors."""
        c = self.code
        lo, hi = _divide(-c.zero, c.n, u.dtype), _divide(c.levels - c.zero, c.n, u.dtype)
        s = self._channel_scale(u)
        if s is not None:
            return lo * s, hi * s
        return lo, hi

    def _fire(self, u: Tensor) -> Tensor:
        if u.dtype in (torch.float16, torch.bfloat16):
            # Codes up to 2**13 and the 1/N grid need float32 precision; AMP gives half inputs.
            return _FireSTE.apply(u.float(), self).to(u.dtype)
        return _FireSTE.apply(u, self)

    # -- dynamics --------------------------------------------------------------------------------
    def _check_time(self, x: Tensor) -> None:
        if x.dim() < 1 or x.shape[0] != self.T:
            raise ValueError(
                f"{type(self).__name__} expects a tensor whose first dimension is time T={self.T}, "
                f"got shape {tuple(x.shape)}"
            )

    #: In spike mode the neuron hands on its integer codes as a :class:`spikedet.spikes.SpikeTrain`
    #: instead of the values ``O`` (set by :func:`spikedet.bitplane.set_spike_mode`).
    spike_mode: bool = False
    #: The neuron's name in its model, for reports (set with the spike mode).
    report_name: str = ""

    def forward(self, x: Tensor) -> Tensor:
        """Emit ``O[t]`` for input currents ``x = I[0..T-1]`` (shape ``[T, ...]``)."""
        self._check_time(x)
        if self.spike_mode:
            from spikedet.spikes import SpikeTrain

            return SpikeTrain(self.codes_of(x), self.code, self.scale, T=self.T, source=self.report_name)
        if self.T == 1:
            return self._fire(x)
        outputs = []
        u = x[0]
        for t in range(self.T):
            if t:
                u = self.alpha * (u - outputs[-1].detach()) + x[t]
            outputs.append(self._fire(u))
        return torch.stack(outputs)

    @torch.no_grad()
    def membrane(self, x: Tensor) -> Tensor:
        """The pre-fire membrane potentials ``U[t]`` (no gradient), shape ``[T, ...]``."""
        self._check_time(x)
        if self.T == 1:
            return x.clone()
        potentials, u, out = [], x[0], None
        for t in range(self.T):
            if t:
                u = self.alpha * (u - out) + x[t]
            potentials.append(u)
            out = self._quantize(u)
        return torch.stack(potentials)

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """Integer codes ``q[t]`` (int32) the neuron fires for input ``x`` (shape ``[T, ...]``)."""
        return self.codes_of(x).to(torch.int32)

    @torch.no_grad()
    def codes_of(self, x: Tensor) -> Tensor:
        """Integer codes ``q[t]`` as a float tensor of ``x``'s dtype (what spike mode passes on)."""
        self._check_time(x)
        if self.T == 1:
            return self._codes_float(x)
        return self._codes_float(self.membrane(x))

    @torch.no_grad()
    def spike_planes(self, x: Tensor) -> Tensor:
        """Spike planes of the codes: shape ``[planes, T, ...]`` of 0/1 uint8 (bit planes for binary)."""
        return self.code.spike_planes(self.codes(x))


def _divide(a: float, b: float, dtype: torch.dtype) -> float:
    """``a / b`` rounded exactly as a division in ``dtype`` would round it, returned as a Python float.

    Comparing a tensor with this scalar is then exact: e.g. ``D = 511 / 100`` in float32 is the float32
    nearest to 5.11, the same number the quantizer produces for the top code.
    """
    if dtype == torch.float64:
        return a / b
    return float(np.float32(a) / np.float32(b))


class IBRALIF(SpikingNeuron):
    """Integer Binary-Range Alignment LIF (IBRA-LIF): codes ``0..D*N`` on a 1/N grid, sent as bit planes.

    ``IBRALIF(D=5.11, N=100)`` is the paper's default (used when neither ``D`` nor ``L`` is given):
    ``L = 511`` codes, ``B = 9`` bit planes. ``L`` can be given instead of ``D``: ``IBRALIF(L=511, N=100)``.
    """

    def __init__(
        self,
        D: float | None = None,
        N: float = 100,
        T: int = 1,
        alpha: float = 0.25,
        *,
        L: int | None = None,
        zero: int = 0,
        scale: Tensor | None = None,
    ):
        levels = _levels(5.11 if D is None and L is None else D, N, L)
        super().__init__(SpikeCode(levels, float(N), zero, "binary"), T=T, alpha=alpha, scale=scale)


class ILIF(SpikingNeuron):
    """Integer LIF (SpikeYOLO): ``O = clip(round(U), 0, D)``, sent at inference as ``D`` unary steps."""

    def __init__(self, D: float = 4, T: int = 1, alpha: float = 0.25, *, N: float = 1, L: int | None = None):
        levels = _levels(D, N, L)
        super().__init__(SpikeCode(levels, float(N), 0, "unary"), T=T, alpha=alpha)


class LIF(SpikingNeuron):
    """Binary LIF: ``O = 1 if U >= 1 else 0`` with the same soft reset; gradient window ``[0, 1]``."""

    def __init__(self, T: int = 1, alpha: float = 0.25):
        super().__init__(SpikeCode(1, 1.0, 0, "unary"), T=T, alpha=alpha, rounding="floor")


def _levels(D: float | None, N: float, L: int | None) -> int:
    if L is not None:
        if isinstance(L, bool) or not isinstance(L, int) or L < 1:
            raise ValueError(f"L must be an integer >= 1, got {L!r}")
        if D is not None and levels_from_range(D, N) != L:
            raise ValueError(f"D={D!r} x N={N!r} does not equal L={L}; give either D or L")
        return L
    if D is None:
        raise ValueError("give D (the largest value) or L (the largest integer code)")
    return levels_from_range(D, N)


#: Neuron types a model YAML may name.
NEURONS: dict[str, type[SpikingNeuron]] = {"IBRALIF": IBRALIF, "ILIF": ILIF, "LIF": LIF}


def register_neuron(cls: type[SpikingNeuron]) -> type[SpikingNeuron]:
    """Make a neuron class known to :func:`neuron_from_spec` (and so to saved weights)."""
    NEURON_TYPES[cls.__name__] = cls
    return cls


#: Every neuron class saved weights may name (IBRA-LIF, I-LIF, LIF, and any registered extension).
NEURON_TYPES: dict[str, type[SpikingNeuron]] = {"SpikingNeuron": SpikingNeuron, **NEURONS}


def neuron_from_spec(spec: dict) -> SpikingNeuron:
    """Rebuild a neuron from :meth:`SpikingNeuron.spec` output."""
    kind = spec.get("type")
    if kind not in NEURON_TYPES:
        raise ValueError(f"unknown neuron type {kind!r} in saved weights; known: {', '.join(NEURON_TYPES)}")
    return NEURON_TYPES[kind].from_spec(spec)


def make_neuron(spec: dict) -> SpikingNeuron:
    """Build a neuron from a YAML-style spec such as ``{"type": "IBRALIF", "D": 5.11, "N": 100, "T": 1}``."""
    spec = dict(spec)
    kind = spec.pop("type", "IBRALIF")
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron type {kind!r}; choose one of {', '.join(NEURONS)}")
    try:
        return NEURONS[kind](**spec)
    except TypeError as e:
        raise ValueError(f"bad parameters for neuron {kind}: {e}") from None


def with_code(neuron: SpikingNeuron, **changes) -> SpikeCode:
    """A copy of ``neuron``'s code with some fields replaced."""
    return replace(neuron.code, **changes)
