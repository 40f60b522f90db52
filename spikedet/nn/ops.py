"""Composition operations between layers: add, concat, max-pool, upsample.

Blocks combine activations through these functions instead of calling ``torch`` directly, so the same
model code runs on plain tensors (training, ANN inference) and on spike-coded activations (spike mode:
the bit-plane converter and the energy estimator pass :mod:`spikedet.snn.spikes` objects between layers).

On spikes: adding trains gives a :class:`~spikedet.snn.spikes.SpikeSum`, concatenating channels a
:class:`~spikedet.snn.spikes.SpikeCat`; max-pool and nearest upsampling act on the codes directly (exact,
since a code's value grows with the code). Anything else falls back to real values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spikedet.snn.spikes import SpikeCat, SpikeSum, SpikeTrain, as_value, is_spiking


def add(a, b):
    if isinstance(a, (SpikeTrain, SpikeSum)) and isinstance(b, (SpikeTrain, SpikeSum)) and a.shape == b.shape:
        return SpikeSum(a.trains() + b.trains())
    return as_value(a) + as_value(b)


def cat(xs: list, dim: int = 1):
    if all(is_spiking(x) for x in xs):
        ndim = len(xs[0].shape)
        if dim % ndim == ndim - 3:  # the channel axis
            parts = []
            for x in xs:
                parts.extend(x.parts if isinstance(x, SpikeCat) else [x])
            return SpikeCat(parts)
    return torch.cat([as_value(x) for x in xs], dim)


def _spatial(t: Tensor, fn) -> Tensor:
    """Apply a 4D spatial op to ``[..., C, H, W]`` (leading dims folded into the batch)."""
    y = fn(t.reshape(-1, *t.shape[-3:]))
    return y.view(*t.shape[:-3], *y.shape[-3:])


def _on_codes(x, fn):
    if isinstance(x, SpikeTrain):
        return x.map_codes(fn)
    if isinstance(x, SpikeCat) and all(isinstance(p, SpikeTrain) for p in x.parts):
        return SpikeCat([p.map_codes(fn) for p in x.parts])
    return None


def maxpool(x, k: int, stride: int = 1, padding: int | None = None):
    p = k // 2 if padding is None else padding

    def pool(t: Tensor) -> Tensor:
        return _spatial(t, lambda y: F.max_pool2d(y, k, stride, p))

    if is_spiking(x):
        # Zero padding of max_pool2d is -inf, so pooled codes stay codes even with a zero offset.
        out = _on_codes(x, pool)
        return out if out is not None else pool(as_value(x))
    return pool(x)


def upsample(x, scale: int = 2):
    def up(t: Tensor) -> Tensor:
        return _spatial(t, lambda y: F.interpolate(y, scale_factor=scale, mode="nearest"))

    if is_spiking(x):
        if isinstance(x, SpikeSum):
            return SpikeSum([p.map_codes(up) for p in x.parts])
        out = _on_codes(x, up)
        return out if out is not None else up(as_value(x))
    return up(x)


# Graph tracing (torch.fx, :mod:`spikedet.model.graph`) records these four as single nodes instead of
# following their spike-aware branches.
for _name in ("add", "cat", "maxpool", "upsample"):
    torch.fx.wrap(_name)
