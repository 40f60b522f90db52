"""Layers shared by spikedet's models: the spiking unit, BN padding, time repeat, upsample and concat.

Tensors between blocks carry time first: ``[T, B, C, H, W]``. Convolutions fold ``T`` into the batch.
Every conv in a spikedet model is a :class:`~spikedet.nn.conv.SpikeConv`, so that operation counts, the
bit-plane converter and the energy estimator find all of them (and only them: Ultralytics' DFL conv is not
counted).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikedet.nn import ops, reparam
from spikedet.nn.conv import SpikeConv
from spikedet.nn.registry import register_block


class BNPad(nn.BatchNorm2d):
    """BatchNorm whose output is padded with the BN's response to a zero input (its effective bias).

    This equals zero-padding the input before the BN, which lets the BN and the following convolutions
    merge into one padded conv exactly. The padding value uses the running statistics (exact in eval).
    """

    def __init__(self, num_features: int, pad: int = 1):
        super().__init__(num_features)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        p = self.pad
        if not p:
            return y
        _, shift = reparam.bn_affine(self)
        v = shift.to(y.dtype).view(1, -1, 1, 1)
        y = F.pad(y, [p, p, p, p])
        y[..., :p, :] = v
        y[..., -p:, :] = v
        y[..., :, :p] = v
        y[..., :, -p:] = v
        return y


class SpikingConv(nn.Module):
    """``neuron -> conv body -> BN`` over ``[T, B, C, H, W]``: SpikeYOLO's pre-activation unit.

    ``body`` is a :class:`SpikeConv` or a chain with a ``merge()`` method returning one. After
    :meth:`reparameterize` the unit is ``neuron -> SpikeConv (with bias)``: the form that runs on spikes.
    """

    def __init__(self, neuron: nn.Module | None, body: nn.Module, norm: nn.Module | None = None):
        super().__init__()
        self.neuron = neuron
        self.body = body
        self.norm = norm

    @property
    def bias(self) -> Tensor | None:
        """The bias of a plain conv body (Ultralytics' Detect.bias_init writes to it)."""
        return self.body.bias if isinstance(self.body, nn.Conv2d) else None

    def forward(self, x: Tensor) -> Tensor:
        T = x.shape[0]
        if self.neuron is not None:
            x = self.neuron(x)
        y = self.body(x.flatten(0, 1))
        if self.norm is not None:
            y = self.norm(y)
        return y.unflatten(0, (T, -1))

    @property
    def reparameterized(self) -> bool:
        return self.norm is None and isinstance(self.body, SpikeConv)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.reparameterized:
            return
        conv = self.body if isinstance(self.body, SpikeConv) else self.body.merge()
        self.body = conv.merged_with(self.norm)
        self.norm = None


@register_block(channels="input", neuron=False, repeatable=False)
class TimeRepeat(nn.Module):
    """Direct input encoding: the image ``[B, C, H, W]`` repeated ``T`` times -> ``[T, B, C, H, W]``."""

    def __init__(self, T: int = 1):
        super().__init__()
        self.T = int(T)

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0).expand(self.T, *x.shape) if self.T > 1 else x.unsqueeze(0)

    def extra_repr(self) -> str:
        return f"T={self.T}"


@register_block(channels="keep", neuron=False, repeatable=False)
class SpikeUpsample(nn.Module):
    """Nearest-neighbour upsampling of the spatial axes of ``[..., C, H, W]`` (``[T, B, C, H, W]`` in SpikeYOLO)."""

    def __init__(self, scale: int = 2):
        super().__init__()
        self.scale = int(scale)

    def forward(self, x: Tensor) -> Tensor:
        return ops.upsample(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


@register_block(channels="concat", neuron=False, repeatable=False)
class SpikeConcat(nn.Module):
    """Concatenation along ``dim``: the channels, dim 2 of ``[T, B, C, H, W]`` (dim 1 for ``[B, C, H, W]``)."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.d = int(dim)

    def forward(self, xs: list[Tensor]) -> Tensor:
        return ops.cat(list(xs), dim=self.d)

    def extra_repr(self) -> str:
        return f"dim={self.d}"
