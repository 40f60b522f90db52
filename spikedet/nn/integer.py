"""The integer conv of an integer deployment model, run exactly in PyTorch.

An integer conv holds int8 (or int16) weights per output channel, an int64 bias in accumulator units and, per
input channel, the code standing for 0. On integer input ``X`` (spike codes, or the image as ``round(255 x)``)
it computes, with zero padding *after* the zero offset is removed (``docs/integer-format.md``)::

    acc[o] = bias[o] + sum_{c, i, j} W[o, c, i, j] * (X[c] - zero[c])

PyTorch has no exact integer conv on the CPU (int64 is slow, int32 wraps silently) nor on CUDA, so the conv
runs in floating point on the integer values and is rounded: in float64 exact as long as every partial sum stays
below ``2**53``, in float32 (on the CPU, about 3x faster) below ``2**24``; the converter proves a bound from the
weights and the code ranges (``bound``). The rounding also absorbs the tiny errors of inexact algorithms (FFT,
Winograd) a GPU library may pick in float64. The real value of one accumulator
unit is ``scale[o]``; head convs hand on ``acc * scale`` in float32 to the float decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

#: Largest accumulator bound the float64 path computes exactly (every partial sum an integer below 2**53).
EXACT_BOUND = 2**53
#: Below this bound a float32 conv with direct summation is exact too.
FLOAT32_EXACT_BOUND = 2**24


@dataclass
class IntegerConv:
    """The integer form of one conv (see the module docstring).

    Attributes:
        weight: int8 or int16 ``[C_out, C_in / groups, kh, kw]``.
        bias: int64 ``[C_out]`` in accumulator units.
        scale: float64 ``[C_out]``, the real value of one accumulator unit.
        input_zero: int64 ``[C_in]``, the code standing for 0 per input channel, or None (all 0).
        bound: ``max_o (|bias[o]| + sum |W[o]| * max |x - zero|)`` over every input the model can see: it bounds
            ``|acc|`` and every partial sum of it, in any summation order.
        image: the conv reads the image (``round(255 x)``) rather than spike codes.
        output: ``accumulator`` (int values for the next neuron or add) or ``value`` (head convs:
            ``acc * scale`` in float32 for the float decode).
    """

    weight: Tensor
    bias: Tensor
    scale: Tensor
    input_zero: Tensor | None = None
    bound: int = 0
    image: bool = False
    output: str = "accumulator"
    _device_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.weight.dtype not in (torch.int8, torch.int16):
            raise ValueError(f"integer conv weights must be int8 or int16, got {self.weight.dtype}")
        if self.output not in ("accumulator", "value"):
            raise ValueError(f"output must be 'accumulator' or 'value', got {self.output!r}")
        if self.bound >= EXACT_BOUND:
            raise ValueError(f"accumulator bound {self.bound} reaches 2**53: no exact float64 path")

    @property
    def weight_bits(self) -> int:
        return 8 if self.weight.dtype == torch.int8 else 16

    def _on(self, device) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        if device not in self._device_cache:
            zero = None if self.input_zero is None else self.input_zero.to(device, torch.float64).view(-1, 1, 1)
            self._device_cache[device] = (self.weight.to(device, torch.float64), self.bias.to(device, torch.float64),
                                          zero, self.scale.to(device, torch.float64))
        return self._device_cache[device]

    def _parts(self, device) -> list[tuple[Tensor, float, int]]:
        """The weights as float32 parts with small integers: ``(part, factor, largest row sum of |part|)``; int16
        weights split into a high and a low byte, ``W = 256 * hi + lo``, so each part's sums stay small."""
        key = ("parts", device)
        if key not in self._device_cache:
            w = self.weight.long()
            split = [(w >> 8, 256.0), (w & 255, 1.0)] if self.weight_bits == 16 else [(w, 1.0)]
            self._device_cache[key] = [(p.to(device, torch.float32), f, int(p.abs().sum((1, 2, 3)).max()))
                                       for p, f in split]
        return self._device_cache[key]

    @property
    def float32_exact(self) -> bool:
        """Whether a float32 conv computes this conv exactly on the CPU: every partial sum is an integer bounded
        by ``bound`` (a sum of ``|w| |x|`` terms), so below ``2**24`` each is exact in any summation order."""
        return self.bound < FLOAT32_EXACT_BOUND

    def accumulate(self, x: Tensor, stride, padding, groups: int) -> Tensor:
        """Integer accumulators (float64, integer-valued) of integer input ``x`` (codes, or ``round(255 x)``).

        On the CPU, float32 convs with direct summation (exact, about 3x faster than float64) where a bound
        proves every partial sum below ``2**24``: the conv's own ``bound``, else, for this input, its largest
        ``|x - zero|`` times each weight part's largest row sum (int16 weights run as two byte parts). Everything
        else, and everything on a GPU (whose libraries may pick inexact FFT or Winograd algorithms for float32),
        runs in float64."""
        weight, bias, zero, _ = self._on(x.device)
        if x.device.type == "cpu":
            x32 = x.to(torch.float32)
            if zero is not None:
                x32 = x32 - zero.to(torch.float32)
            parts = self._parts(x.device)
            if self.float32_exact and len(parts) == 1:
                acc = F.conv2d(x32, parts[0][0], None, stride, padding, 1, groups).to(torch.float64)
                return acc.add_(bias.view(-1, 1, 1))  # exact integers by the bound: nothing to round
            reach = float(x32.abs().max()) if x32.numel() else 0.0
            if all(reach * peak < FLOAT32_EXACT_BOUND for _, _, peak in parts):
                acc = None
                for part, factor, _ in parts:
                    y = F.conv2d(x32, part, None, stride, padding, 1, groups).to(torch.float64)
                    acc = y.mul_(factor) if acc is None else acc.add_(y.mul_(factor))
                return acc.add_(bias.view(-1, 1, 1))
        x = x.to(torch.float64)
        if zero is not None:
            x = x - zero
        acc = F.conv2d(x, weight, None, stride, padding, 1, groups).round_()
        return acc.add_(bias.view(-1, 1, 1))

    def hand_on(self, acc: Tensor) -> Tensor:
        """What the conv passes on: the accumulators, or for head convs their real values in float32."""
        if self.output == "accumulator":
            return acc
        return (acc * self._on(acc.device)[3].view(-1, 1, 1)).float()


def image_codes(x: Tensor) -> Tensor:
    """The image as integers: ``round(255 x)`` computed in float32 (exact for Ultralytics' ``k / 255`` input)."""
    return torch.round(x.float() * 255)
