"""SpikeYOLO's blocks (Luo et al., ECCV 2024, "Integer-Valued Training and Spike-Driven Inference Spiking
Neural Network for High-performance and Energy-efficient Object Detection"), built on spikedet's neurons.

Each spiking layer is pre-activation ``neuron -> conv -> BN``; only the first layer convolves the real
image. Every block maps ``[T, B, C, H, W]`` to ``[T, B, C', H', W']``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from ultralytics.nn.modules.block import DFL
from ultralytics.nn.modules.head import Detect

from spikedet.nn import ops, reparam
from spikedet.nn.conv import SpikeConv
from spikedet.nn.layers import BNPad, SpikingConv
from spikedet.nn.registry import NeuronFactory, register_block


def _conv(c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, bias: bool = False) -> SpikeConv:
    return SpikeConv(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=bias)


@register_block(channels="out")
class DownSampling(nn.Module):
    """``[neuron] -> conv(k, s, p, bias) -> BN``; the first one sees the real image and has no neuron."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 2, p: int = 1, first: bool = False, *, neuron: NeuronFactory):
        super().__init__()
        self.unit = SpikingConv(None if first else neuron(), _conv(c1, c2, k, s, p, bias=True), nn.BatchNorm2d(c2))

    def forward(self, x: Tensor) -> Tensor:
        return self.unit(x)


@register_block(channels="out")
class StandardConv(nn.Module):
    """``neuron -> conv(k, s, same padding, no bias) -> BN``."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, *, neuron: NeuronFactory):
        super().__init__()
        self.unit = SpikingConv(neuron(), _conv(c1, c2, k, s), nn.BatchNorm2d(c2))

    def forward(self, x: Tensor) -> Tensor:
        return self.unit(x)


class RepConvBody(nn.Module):
    """``1x1 (c_in->c_in) -> BN (padded) -> depthwise 3x3 -> 1x1 (c_in->c_out) -> BN``: one 3x3 conv once merged."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pw1 = _conv(c_in, c_in, 1)
        self.bn1 = BNPad(c_in, pad=1)
        self.dw = _conv(c_in, c_in, 3, p=0, g=c_in)
        self.pw2 = _conv(c_in, c_out, 1)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.pw2(self.dw(self.bn1(self.pw1(x)))))

    def merge(self) -> SpikeConv:
        w, b = reparam.merge_repconv(self.pw1.weight, self.bn1, self.dw.weight, self.pw2.weight, self.bn2)
        conv = SpikeConv.from_weights(w, b, 1, 1)
        conv.trained_macs_per_pixel = sum(m.macs_per_pixel() for m in (self.pw1, self.dw, self.pw2))
        return conv


class SepTailBody(nn.Module):
    """``BN (padded) -> 1x1 (c_in->c_out) -> depthwise 3x3``: the end of SepConv, one 3x3 conv once merged."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn = BNPad(c_in, pad=1)
        self.pw = _conv(c_in, c_out, 1)
        self.dw = _conv(c_out, c_out, 3, p=0, g=c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(self.pw(self.bn(x)))

    def merge(self) -> SpikeConv:
        w, b = reparam.merge_septail(self.bn, self.pw.weight, self.dw.weight)
        conv = SpikeConv.from_weights(w, b, 1, 1)
        conv.trained_macs_per_pixel = self.pw.macs_per_pixel() + self.dw.macs_per_pixel()
        return conv


class SepConv(nn.Module):
    """Inverted separable conv (expansion 2): ``neuron -> 1x1 -> BN -> neuron -> dw kxk -> BN -> neuron
    -> [BN (padded) -> 1x1 -> dw 3x3] -> BN``; the bracket merges into one 3x3 conv."""

    def __init__(self, dim: int, k: int = 7, expansion: int = 2, *, neuron: NeuronFactory):
        super().__init__()
        hidden = int(expansion * dim)
        self.pw = SpikingConv(neuron(), _conv(dim, hidden, 1), nn.BatchNorm2d(hidden))
        self.dw = SpikingConv(neuron(), _conv(hidden, hidden, k, g=hidden), nn.BatchNorm2d(hidden))
        self.tail = SpikingConv(neuron(), SepTailBody(hidden, dim), nn.BatchNorm2d(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.tail(self.dw(self.pw(x)))


@register_block(channels="same")
class AllConvBlock(nn.Module):
    """``x = SepConv(x) + x; x = x + StdConv3x3(r*dim -> dim)(StdConv3x3(dim -> r*dim)(x))``."""

    def __init__(self, dim: int, r: int = 4, k: int = 7, *, neuron: NeuronFactory):
        super().__init__()
        self.sep = SepConv(dim, k, neuron=neuron)
        self.conv1 = StandardConv(dim, r * dim, 3, neuron=neuron)
        self.conv2 = StandardConv(r * dim, dim, 3, neuron=neuron)

    def forward(self, x: Tensor) -> Tensor:
        x = ops.add(self.sep(x), x)
        return ops.add(self.conv2(self.conv1(x)), x)


@register_block(channels="same")
class ConvBlock(nn.Module):
    """``x = SepConv(x) + x; x = x + BN(RepConv(neuron(BN(RepConv(neuron(x), dim -> r*dim))), r*dim -> dim))``."""

    def __init__(self, dim: int, r: int = 4, k: int = 7, *, neuron: NeuronFactory):
        super().__init__()
        self.sep = SepConv(dim, k, neuron=neuron)
        self.conv1 = SpikingConv(neuron(), RepConvBody(dim, r * dim), nn.BatchNorm2d(r * dim))
        self.conv2 = SpikingConv(neuron(), RepConvBody(r * dim, dim), nn.BatchNorm2d(dim))

    def forward(self, x: Tensor) -> Tensor:
        x = ops.add(self.sep(x), x)
        return ops.add(self.conv2(self.conv1(x)), x)


@register_block(channels="out")
class SpikeSPPF(nn.Module):
    """Spiking SPPF: ``1x1 (c1 -> c1/2)``, three chained ``k x k`` max-pools, concat, ``1x1 -> c2``."""

    def __init__(self, c1: int, c2: int, k: int = 5, *, neuron: NeuronFactory):
        super().__init__()
        hidden = c1 // 2
        self.k = k
        self.cv1 = StandardConv(c1, hidden, 1, neuron=neuron)
        self.cv2 = StandardConv(4 * hidden, c2, 1, neuron=neuron)

    def forward(self, x: Tensor) -> Tensor:
        ys = [self.cv1(x)]
        for _ in range(3):
            ys.append(ops.maxpool(ys[-1], self.k))
        return self.cv2(ops.cat(ys, 2))


class _HeadBranch(nn.Sequential):
    """Two spiking 3x3 convs then ``neuron -> 1x1 conv (bias)``; output averaged over time."""

    def __init__(self, c1: int, hidden: int, c_out: int, neuron: NeuronFactory):
        super().__init__(
            StandardConv(c1, hidden, 3, neuron=neuron),
            StandardConv(hidden, hidden, 3, neuron=neuron),
            SpikingConv(neuron(), _conv(hidden, c_out, 1, bias=True), None),
        )

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).mean(0)


@register_block(channels="detect")
class SpikeDetect(Detect):
    """YOLOv8's anchor-free head with spiking branches; DFL and box decoding stay real-valued.

    Per level: box branch ``spiking 3x3 -> spiking 3x3 -> (neuron -> 1x1 -> 4*reg_max)``, class branch
    ``spiking 3x3 -> spiking 3x3 -> (neuron -> 1x1 -> nc)``, both averaged over ``T`` before decoding.
    Subclassing Ultralytics' ``Detect`` keeps its loss, decoding, NMS and export paths.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), reg_max: int = 16, *, neuron: NeuronFactory):
        nn.Module.__init__(self)  # Detect.__init__ would build real-valued Conv branches
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.no = nc + reg_max * 4
        self.stride = torch.zeros(self.nl)
        c2, c3 = max((16, ch[0] // 4, reg_max * 4)), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(_HeadBranch(x, c2, 4 * reg_max, neuron) for x in ch)
        self.cv3 = nn.ModuleList(_HeadBranch(x, c3, nc, neuron) for x in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()

    def forward_head(self, x: list[Tensor], box_head=None, cls_head=None) -> dict:
        if box_head is None or cls_head is None:
            return {}
        bs = x[0].shape[1]
        boxes = torch.cat([box_head[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], dim=-1)
        scores = torch.cat([cls_head[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)], dim=-1)
        # The loss and the anchor grid only read the feature maps' shapes: the first timestep's views suffice.
        return {"boxes": boxes, "scores": scores, "feats": [xi[0] for xi in x]}
