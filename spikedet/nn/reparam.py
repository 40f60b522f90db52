"""Re-parameterization arithmetic: fold BatchNorm into convs and merge linear conv chains.

All functions return plain ``(weight, bias)`` tensors in float64 accumulation, cast back to the input
dtype, so a merged conv reproduces the chain to rounding error. The chains handled here are the ones
SpikeYOLO trains with (Luo et al., ECCV 2024; the blocks in :mod:`spikedet.nn.spikeyolo`):

- RepConv body: 1x1 (c_in -> c_in) -> BN padded with its effective bias -> depthwise 3x3 (valid)
  -> 1x1 (c_in -> c_out) -> BN  ==  one 3x3 conv (padding 1) with bias.
- SepConv tail: BN padded with its effective bias -> 1x1 (2d -> d) -> depthwise 3x3 (valid)
  ==  one 3x3 conv (padding 1) with bias.

Padding the BN output with the BN's value for a zero input (its effective bias) is what makes these
merges exact at the image borders: it equals zero-padding the chain's input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The per-channel ``(scale, shift)`` an eval-mode BatchNorm applies: ``y = scale * x + shift``."""
    var = bn.running_var.double()
    scale = torch.rsqrt(var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.detach().double()
        shift = bn.bias.detach().double() - bn.running_mean.double() * scale
    else:
        shift = -bn.running_mean.double() * scale
    return scale, shift


def fold_bn(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BN that follows a conv into the conv's weight and bias."""
    scale, shift = bn_affine(bn)
    w = weight.double() * scale.view(-1, 1, 1, 1)
    b = shift if bias is None else bias.double() * scale + shift
    return w.to(weight.dtype), b.to(weight.dtype)


def merge_repconv(w1: Tensor, bn1: nn.BatchNorm2d, wd: Tensor, w2: Tensor, bn2: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Merge 1x1 ``w1`` [c, c_in] -> BN1 (padded) -> depthwise 3x3 ``wd`` [c, 1, 3, 3] -> 1x1 ``w2``
    [c_out, c] -> BN2 into one 3x3 conv ``[c_out, c_in, 3, 3]`` with bias."""
    a1, b1 = bn_affine(bn1)
    a2, b2 = bn_affine(bn2)
    w1_, wd_, w2_ = w1.double().flatten(1), wd.double().flatten(1).view(-1, 3, 3), w2.double().flatten(1)
    # K[o, i, h, w] = a2[o] * sum_c w2[o, c] * wd[c, h, w] * a1[c] * w1[c, i]
    kernel = torch.einsum("oc,chw,c,ci->oihw", w2_, wd_, a1, w1_) * a2.view(-1, 1, 1, 1)
    bias = a2 * (w2_ @ (wd_.sum((1, 2)) * b1)) + b2
    return kernel.to(w1.dtype), bias.to(w1.dtype)


def merge_septail(bn0: nn.BatchNorm2d, w1: Tensor, wd: Tensor) -> tuple[Tensor, Tensor]:
    """Merge BN0 (padded) -> 1x1 ``w1`` [c_out, c_in] -> depthwise 3x3 ``wd`` [c_out, 1, 3, 3]
    into one 3x3 conv ``[c_out, c_in, 3, 3]`` with bias."""
    a0, b0 = bn_affine(bn0)
    w1_, wd_ = w1.double().flatten(1), wd.double().flatten(1).view(-1, 3, 3)
    kernel = torch.einsum("ohw,oi,i->oihw", wd_, w1_, a0)
    bias = wd_.sum((1, 2)) * (w1_ @ b0)
    return kernel.to(w1.dtype), bias.to(w1.dtype)
