"""The integer neuron: spike codes from an integer accumulator with integer arithmetic only.

An integer deployment model (``spikedet convert --integer``) feeds each neuron the int accumulators of the convs
before it. The neuron first requantizes them onto its own grid with one multiplier per channel and a shift,
rounding half up (all divisions by ``2**k`` here are floor divisions, i.e. arithmetic right shifts)::

    J[t] = floor((I[t] * M[c] + 2**(S-1)) / 2**S)

then fires in one of two ways:

- ``threshold`` (IBRA-LIF, I-LIF, LIF): the grid unit is ``1 / (N * 2**F)`` of membrane potential, the membrane
  is a fixed-point integer with ``F`` fraction bits, the leak ``alpha = a / 2**s`` and the soft reset are integer::

      U[0] = J[0]        U[t] = floor((U[t-1] - q[t-1] * 2**F) * a / 2**s) + J[t]
      q[t] = clip(floor((U[t] + R) / 2**F), 0, L)        R = 2**(F-1) (nearest) or 0 (floor)

- ``lut`` (the A2S neuron's SiLU transfer, T = 1): the grid unit is ``1 / G``; one table per layer holds the code
  of every grid point from ``lut_min`` on, clipped at both ends: ``q = lut[clip(J - lut_min, 0, K - 1)]``.

These formulas are the specification (``docs/integer-format.md``); every runtime must give these codes bit for
bit. How close they are to the float neuron is a property of the conversion (``F``, ``G``), measured there.

    >>> import torch
    >>> neuron = IntegerNeuron("threshold", torch.tensor([3]), shift=1, fraction_bits=1, levels=7)
    >>> acc = torch.tensor([0.0, 1.0, 2.0, 3.0, -4.0, 20.0], dtype=torch.float64).view(1, 1, 1, 6)
    >>> neuron.codes(acc).flatten().tolist()     # about round(0.75 * acc), clipped to 0..7; J rounds first
    [0.0, 1.0, 2.0, 3.0, 0.0, 7.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

Kind = Literal["threshold", "lut"]


def floor_shift(x: Tensor, bits: int) -> Tensor:
    """``floor(x / 2**bits)`` of an int64 tensor: an arithmetic right shift (PyTorch's ``>>`` on signed integers
    keeps the sign, i.e. rounds toward minus infinity; 8x faster than a floor division)."""
    return x >> bits if bits else x


@dataclass
class IntegerNeuron:
    """The integer arithmetic of one neuron population (see the module docstring).

    Attributes:
        kind: ``threshold`` or ``lut``.
        multiplier: int64 ``[C]``, the per-channel requantization multiplier ``M``.
        shift: ``S`` (>= 1).
        fraction_bits: ``F``, fraction bits of the fixed-point membrane (threshold neurons).
        levels: ``L``, the largest code (threshold neurons clip to it).
        rounding: ``nearest`` (half up) or ``floor`` (LIF's threshold).
        leak: ``(a, s)``: ``alpha = a / 2**s`` (threshold neurons with T > 1).
        lut: int ``[K]`` table of codes (lut neurons); ``lut_min``: the grid index of its first entry.
        grid: grid steps per unit of potential (lut neurons; informative).
    """

    kind: Kind
    multiplier: Tensor
    shift: int
    fraction_bits: int = 0
    levels: int = 0
    rounding: str = "nearest"
    leak: tuple[int, int] = (0, 0)
    lut: Tensor | None = None
    lut_min: int = 0
    grid: float = 0.0
    _device_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in ("threshold", "lut"):
            raise ValueError(f"integer neuron kind must be 'threshold' or 'lut', got {self.kind!r}")
        if self.shift < 1:
            raise ValueError(f"the requantization shift must be >= 1, got {self.shift}")
        if self.kind == "lut" and (self.lut is None or self.lut.numel() == 0):
            raise ValueError("a lut neuron needs its table")
        if self.kind == "threshold" and (self.fraction_bits < 1 or self.levels < 1):
            raise ValueError("a threshold neuron needs fraction_bits >= 1 and levels >= 1")

    def _on(self, device) -> tuple[Tensor, Tensor | None]:
        if device not in self._device_cache:
            lut = None if self.lut is None else self.lut.to(device=device, dtype=torch.int64)
            self._device_cache[device] = (self.multiplier.to(device=device, dtype=torch.int64).view(-1, 1, 1), lut)
        return self._device_cache[device]

    def grid_input(self, acc: Tensor) -> Tensor:
        """``J``: the accumulators (integer values, any dtype, channels at dim -3) on the neuron's grid, int64."""
        multiplier, _ = self._on(acc.device)
        return floor_shift(acc.to(torch.int64).mul_(multiplier).add_(1 << (self.shift - 1)), self.shift)

    def codes(self, acc: Tensor, T: int = 1) -> Tensor:
        """Codes for accumulators ``acc`` as an integer-valued float tensor (float32 while codes fit its 24-bit
        mantissa, else float64); with ``T > 1`` time is dimension 0."""
        j = self.grid_input(acc)
        dtype = torch.float32 if self.levels < 2**24 else torch.float64
        if self.kind == "lut":
            _, lut = self._on(acc.device)
            return torch.take(lut, j.sub_(self.lut_min).clamp_(0, lut.numel() - 1)).to(dtype)
        f = self.fraction_bits
        half = (1 << (f - 1)) if self.rounding == "nearest" else 0
        if T == 1:
            return floor_shift(j.add_(half), f).clamp_(0, self.levels).to(dtype)
        a, s = self.leak
        codes = []
        u = j[0]
        for t in range(T):
            if t:
                u = floor_shift((u - codes[-1] * (1 << f)) * a, s) + j[t]
            codes.append(floor_shift(u + half, f).clamp_(0, self.levels))
        return torch.stack(codes).to(dtype)

    def as_fields(self) -> dict:
        """The scalar fields as saved in an integer graph's neuron node (tensors are saved apart)."""
        fields = {"kind": self.kind, "shift": self.shift}
        if self.kind == "threshold":
            fields.update(fraction_bits=self.fraction_bits, rounding=self.rounding,
                          leak={"multiplier": self.leak[0], "shift": self.leak[1]})
        else:
            fields.update(lut_min=self.lut_min, grid=self.grid)
        return fields
