"""Spiking neurons with integer codes: IBRA-LIF, I-LIF, LIF and the A2S neuron, and the one neuron registry.

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
    >>> from spikedet.snn import IBRALIF
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
import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikedet.snn.code import SpikeCode, fmt_number, levels_from_range
from spikedet.snn.integer import IntegerNeuron
from spikedet.snn.spikes import SpikeTrain

__all__ = [
    "A2SNeuron",
    "IBRALIF",
    "ILIF",
    "LIF",
    "NEURONS",
    "SpikingNeuron",
    "make_neuron",
    "neuron_from_spec",
    "register_neuron",
]

Rounding = Literal["nearest", "floor"]


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

    def extra_repr(self) -> str:
        c = self.code
        text = f"L={c.levels}, N={fmt_number(c.n)}, D={fmt_number(c.d)}, B={c.bits}, T={self.T}, alpha={self.alpha}"
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
            merged = self.code.first_merged_code(u.dtype)
            if merged is not None:
                dtype = str(u.dtype).removeprefix("torch.")
                warnings.warn(
                    f"{dtype} merges this neuron's codes from {merged} up (L={self.L}, N={fmt_number(self.code.n)}): "
                    "its output is rounded onto fewer levels (train in float32, or in float16 AMP if it keeps them)",
                    stacklevel=2,
                )
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

    # -- spike mode ------------------------------------------------------------------------------
    #: In spike mode the neuron hands on its integer codes as a :class:`~spikedet.snn.spikes.SpikeTrain`
    #: instead of the values ``O`` (:meth:`set_spike_mode`; class-level defaults also serve modules pickled
    #: before these fields existed).
    spike_mode: bool = False
    #: The neuron's name in its model, for reports (given with the spike mode).
    report_name: str = ""

    #: The integer arithmetic of an integer deployment model (:mod:`spikedet.snn.integer`): in spike mode the
    #: neuron then takes int accumulators and fires with integer operations only.
    integer: IntegerNeuron | None = None

    def set_integer(self, state: IntegerNeuron | None) -> None:
        self.integer = state

    def spike_codes(self, x: Tensor) -> Tensor:
        """The codes spike mode hands on: integer arithmetic on accumulators, or the float quantizer."""
        return self.integer.codes(x, self.T) if self.integer is not None else self.codes_of(x)

    def set_spike_mode(self, enabled: bool, name: str = "") -> None:
        """Hand on :class:`~spikedet.snn.spikes.SpikeTrain` codes (``enabled``) or real values; ``name`` labels
        the trains in reports."""
        self.spike_mode = bool(enabled)
        self.report_name = name

    def forward(self, x: Tensor) -> Tensor:
        """Emit ``O[t]`` for input currents ``x = I[0..T-1]`` (shape ``[T, ...]``)."""
        self._check_time(x)
        if self.spike_mode:
            return SpikeTrain(self.spike_codes(x), self.code, self.scale, T=self.T, source=self.report_name)
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


class A2SNeuron(SpikingNeuron):
    """A graded neuron for ANN-to-SNN conversion: the ANN's SiLU, quantized on a ``1/N`` grid.

    ``q = clip(round(f(U) * N / s + zero), 0, L)`` and ``value = s * (q - zero) / N``, with ``f`` SiLU (or the
    identity), ``s`` an optional per-channel scale and ``zero`` the code standing for 0 (SiLU reaches -0.278,
    so the range extends below zero). It works on ``[B, C, H, W]`` (one timestep, no time axis) like the
    activation it replaces; :mod:`spikedet.convert.a2s` builds and calibrates it.

        >>> import torch
        >>> neuron = A2SNeuron(SpikeCode(levels=30, n=10.0, zero=3))
        >>> u = torch.tensor([-5.0, 0.0, 1.0, 9.0]).view(1, 4, 1, 1)   # [B, C, H, W]
        >>> neuron.codes_of(u).flatten().tolist()                      # 3 stands for 0; 30 is the top
        [3.0, 3.0, 10.0, 30.0]
        >>> [round(v, 4) for v in neuron(u).flatten().tolist()]        # (q - 3) / 10
        [0.0, 0.0, 0.7, 2.7]

    Args:
        code: levels ``L``, scale ``N``, zero code and spike encoding.
        transfer: ``"silu"`` (the ANN's activation) or ``"identity"``.
        scale: optional per-channel scale ``[C]``.
    """

    def __init__(self, code: SpikeCode, transfer: str = "silu", scale: Tensor | None = None):
        super().__init__(code, T=1, alpha=0.0, rounding="nearest", scale=scale)
        if transfer not in ("silu", "identity"):
            raise ValueError(f"transfer must be 'silu' or 'identity', got {transfer!r}")
        self.transfer = transfer

    def _scale4d(self, x: Tensor) -> Tensor | None:
        return None if self.scale is None else self.scale.to(x.dtype).view(1, -1, 1, 1)

    def codes_of(self, x: Tensor) -> Tensor:
        c = self.code
        s = self._scale4d(x)
        f = F.silu(x) if self.transfer == "silu" else x.clone()  # a fresh tensor: the rest is in place
        if s is not None:
            f.div_(s)
        f.mul_(c.n)
        if c.zero:
            f.add_(c.zero)
        return f.round_().clamp_(0, c.levels)

    def forward(self, x: Tensor):
        if self.spike_mode:
            return SpikeTrain(self.spike_codes(x), self.code, self.scale, T=1, source=self.report_name)
        q = self.codes_of(x)
        c = self.code
        out = (q - c.zero) / c.n if c.zero else q / c.n
        s = self._scale4d(x)
        return out * s if s is not None else out

    def extra_repr(self) -> str:
        return super().extra_repr() + f", transfer={self.transfer}"

    def spec(self) -> dict:
        return {**super().spec(), "transfer": self.transfer}

    @classmethod
    def from_spec(cls, spec: dict) -> "A2SNeuron":
        channels = spec.get("scale_channels")
        return cls(SpikeCode(**spec["code"]), spec.get("transfer", "silu"), None if channels is None else torch.ones(channels))


# -- the neuron registry -------------------------------------------------------------------------

#: Every neuron class by name: what a model YAML's ``neuron: {type: ...}`` and saved weights may name.
NEURONS: dict[str, type[SpikingNeuron]] = {
    "IBRALIF": IBRALIF,
    "ILIF": ILIF,
    "LIF": LIF,
    "A2SNeuron": A2SNeuron,
    "SpikingNeuron": SpikingNeuron,
}


def register_neuron(cls: type[SpikingNeuron]) -> type[SpikingNeuron]:
    """Class decorator: make a neuron known to model YAMLs (by its class name) and to saved weights."""
    if not (isinstance(cls, type) and issubclass(cls, SpikingNeuron)):
        raise TypeError(f"only SpikingNeuron subclasses can be registered, got {cls!r}")
    NEURONS[cls.__name__] = cls
    return cls


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


def neuron_from_spec(spec: dict) -> SpikingNeuron:
    """Rebuild a neuron from :meth:`SpikingNeuron.spec` output (what saved weights hold)."""
    kind = spec.get("type")
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron type {kind!r} in saved weights; known: {', '.join(NEURONS)}")
    return NEURONS[kind].from_spec(spec)
