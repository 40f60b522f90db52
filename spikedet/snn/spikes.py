"""Spike-coded activations passed between layers in spike mode.

In training, a neuron hands the next layer a float tensor ``O = q / N``. In *spike mode* (used by the
bit-plane converter, the energy estimator and analysis) it hands over a :class:`SpikeTrain`: the integer
codes ``q`` together with the code that gives them meaning. Residual adds make a :class:`SpikeSum` of
trains and channel concatenation a :class:`SpikeCat`; a conv receiving any of these sees exactly which
trains, with which scales, feed which of its input channels (:meth:`terms`).

The real value of a train is ``scale * (q - zero) / N`` per channel (scale 1 when absent).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spikedet.snn.code import SpikeCode


@dataclass
class SpikeTrain:
    """Integer codes of one neuron population.

    Attributes:
        codes: integer-valued float tensor ``[..., C, H, W]`` (time folded into the batch or leading).
        code: the neuron's :class:`SpikeCode` (levels, N, zero offset, encoding).
        scale: optional per-channel scale ``[C]``.
        T: timesteps in the leading dimension(s) of ``codes`` (for per-image spike counts).
        source: name of the neuron that fired it (for reports).
    """

    codes: Tensor
    code: SpikeCode
    scale: Tensor | None = None
    T: int = 1
    source: str = ""

    # -- tensor-like shape handling ----------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return self.codes.shape

    @property
    def channels(self) -> int:
        return int(self.codes.shape[-3])  # an int even while tracing (ONNX export), where shapes are tensors

    def _with(self, codes: Tensor) -> "SpikeTrain":
        return SpikeTrain(codes, self.code, self.scale, self.T, self.source)

    def flatten(self, start: int = 0, end: int = -1) -> "SpikeTrain":
        return self._with(self.codes.flatten(start, end))

    def unflatten(self, dim: int, sizes) -> "SpikeTrain":
        return self._with(self.codes.unflatten(dim, sizes))

    def map_codes(self, fn) -> "SpikeTrain":
        """Apply a code-preserving op (max-pool, nearest upsample, slicing) to the codes."""
        return self._with(fn(self.codes))

    # -- meaning ---------------------------------------------------------------------------------
    def factor(self, dtype: torch.dtype | None = None) -> Tensor:
        """Per-channel value of one code step: ``scale / N`` as a ``[C]`` tensor."""
        dtype = dtype or self.codes.dtype
        base = torch.full((self.channels,), 1.0 / self.code.n, dtype=torch.float64, device=self.codes.device)
        if self.scale is not None:
            base = base * self.scale.to(device=self.codes.device, dtype=torch.float64)
        return base.to(dtype)

    def value(self) -> Tensor:
        """The real-valued activation the codes stand for."""
        q = self.codes - self.code.zero if self.code.zero else self.codes
        if self.scale is None:
            return q / self.code.n
        shape = [1] * q.dim()
        shape[-3] = -1
        return q * (self.scale.to(q.dtype) / self.code.n).view(shape)

    def terms(self, offset: int = 0) -> list[tuple["SpikeTrain", int]]:
        return [(self, offset)]

    def trains(self) -> list["SpikeTrain"]:
        return [self]

    def describe(self) -> str:
        return "spikes"


@dataclass
class SpikeSum:
    """Element-wise sum of spike trains (a residual add of spikes): same shape, same channels."""

    parts: list[SpikeTrain]

    @property
    def shape(self) -> torch.Size:
        return self.parts[0].shape

    @property
    def channels(self) -> int:
        return self.parts[0].channels

    def flatten(self, start: int = 0, end: int = -1) -> "SpikeSum":
        return SpikeSum([p.flatten(start, end) for p in self.parts])

    def unflatten(self, dim: int, sizes) -> "SpikeSum":
        return SpikeSum([p.unflatten(dim, sizes) for p in self.parts])

    def value(self) -> Tensor:
        total = self.parts[0].value()
        for p in self.parts[1:]:
            total = total + p.value()
        return total

    def terms(self, offset: int = 0) -> list[tuple[SpikeTrain, int]]:
        return [(p, offset) for p in self.parts]

    def trains(self) -> list[SpikeTrain]:
        return list(self.parts)

    def describe(self) -> str:
        return f"sum of {len(self.parts)}"


@dataclass
class SpikeCat:
    """Channel concatenation (dim -3) of spike-coded activations with possibly different codes."""

    parts: list

    @property
    def shape(self) -> torch.Size:
        first = self.parts[0].shape
        return torch.Size([*first[:-3], sum(p.channels for p in self.parts), *first[-2:]])

    @property
    def channels(self) -> int:
        return int(sum(p.channels for p in self.parts))

    def flatten(self, start: int = 0, end: int = -1) -> "SpikeCat":
        return SpikeCat([p.flatten(start, end) for p in self.parts])

    def unflatten(self, dim: int, sizes) -> "SpikeCat":
        return SpikeCat([p.unflatten(dim, sizes) for p in self.parts])

    def value(self) -> Tensor:
        return torch.cat([p.value() for p in self.parts], dim=-3)

    def terms(self, offset: int = 0) -> list[tuple[SpikeTrain, int]]:
        out = []
        for p in self.parts:
            out.extend(p.terms(offset))
            offset = offset + p.channels
        return out

    def trains(self) -> list[SpikeTrain]:
        return [t for p in self.parts for t in p.trains()]

    def describe(self) -> str:
        return "concat(" + ", ".join(p.describe() for p in self.parts) + ")"


Spiking = SpikeTrain | SpikeSum | SpikeCat


def is_spiking(x) -> bool:
    return isinstance(x, Spiking)


def as_value(x):
    """A real-valued tensor for ``x`` (spike-coded or not)."""
    return x.value() if is_spiking(x) else x
