"""YOLOv5 (v6.x) as registered spikedet blocks: the ANN that ANN-to-SNN conversion starts from.

The blocks follow the architecture of Ultralytics' YOLOv5 release 6 (Conv = conv -> BN -> SiLU, C3 with
bottlenecks, SPPF, nearest upsampling, concatenation, an anchor-based detection head). They work on
ordinary 4D tensors ``[B, C, H, W]``; no spiking neurons are involved (``neuron=False``). Module and
attribute names mirror YOLOv5's (``conv``/``bn``/``act``, ``cv1``/``cv2``/``cv3``/``m``), so parameter
names line up with the official checkpoints (see :mod:`spikedet.io.yolov5`).

Conversion hooks:

- every activation is the submodule attribute ``act`` of a :class:`V5Conv` (``nn.SiLU()`` by default),
  so a converter can swap it for a spiking neuron;
- every convolution is a :class:`~spikedet.nn.conv.SpikeConv` (operation counting finds it);
- tensors are combined only through :mod:`spikedet.nn.ops` (add, cat, maxpool, upsample).

Architecture facts from YOLOv5 (Ultralytics, AGPL-3.0); the code here is spikedet's own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from ultralytics.nn.modules.head import Detect
from ultralytics.utils import LOGGER

from spikedet.nn import ops
from spikedet.nn.conv import SpikeConv
from spikedet.nn.layers import SpikeConcat, SpikeUpsample
from spikedet.nn.registry import register_block, scaled_depth

BN_EPS = 1e-3  # YOLOv5's BatchNorm settings (its initialize_weights sets them on every BN)
BN_MOMENTUM = 0.03


@register_block("V5Conv", channels="out", neuron=False)
class V5Conv(nn.Module):
    """``SpikeConv(k, s, padding, no bias) -> BatchNorm2d -> act``: YOLOv5's ``Conv``.

    Padding defaults to ``k // 2`` ("same" for odd kernels); YOLOv5's stem is ``k=6, s=2, p=2``.
    ``act``: ``True`` for SiLU, ``False``/``None`` for identity, or a module to use as is.
    """

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, act=True):
        super().__init__()
        self.conv = SpikeConv(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        if act is True:
            self.act = nn.SiLU()
        elif isinstance(act, nn.Module):
            self.act = act
        else:
            self.act = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return self.act(self.bn(y) if self.bn is not None else y)

    @property
    def reparameterized(self) -> bool:
        return self.bn is None

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the BN into the conv (eval statistics): ``conv (with bias) -> act``."""
        if self.bn is not None:
            self.conv = self.conv.merged_with(self.bn)
            self.bn = None


class Bottleneck(nn.Module):
    """``x -> V5Conv 1x1 (c1 -> c2*e) -> V5Conv 3x3 (-> c2)``, plus ``x`` when ``shortcut`` and ``c1 == c2``."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = V5Conv(c1, hidden, 1, 1)
        self.cv2 = V5Conv(hidden, c2, 3, 1, g=g)
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return ops.add(x, y) if self.add else y


@register_block("C3", channels="out", neuron=False, repeatable=False)
class C3(nn.Module):
    """CSP bottleneck with three convs: ``cv3(cat(m(cv1(x)), cv2(x)))``, ``m`` a chain of bottlenecks.

    YOLOv5 puts the depth-scaled repeat count *inside* the block, so the YAML row has repeats 1 and passes
    the unscaled count and the scale's ``depth`` as arguments: ``[c2, n, depth, shortcut]``. The block
    holds ``max(round(n * depth), 1)`` bottlenecks (``n`` itself when ``n <= 1``).
    """

    def __init__(self, c1: int, c2: int, n: int = 1, depth: float = 1.0, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = V5Conv(c1, hidden, 1, 1)
        self.cv2 = V5Conv(c1, hidden, 1, 1)
        self.cv3 = V5Conv(2 * hidden, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, g, e=1.0) for _ in range(scaled_depth(n, depth))))

    def forward(self, x: Tensor) -> Tensor:
        return self.cv3(ops.cat([self.m(self.cv1(x)), self.cv2(x)], 1))


@register_block("SPPF", channels="out", neuron=False, repeatable=False)
class SPPF(nn.Module):
    """Fast spatial pyramid pooling: ``cv1`` (c1 -> c1/2), three chained ``k x k`` stride-1 max-pools,
    concatenation of the four maps, ``cv2`` (1x1 -> c2)."""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        hidden = c1 // 2
        self.k = int(k)
        self.cv1 = V5Conv(c1, hidden, 1, 1)
        self.cv2 = V5Conv(4 * hidden, c2, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        maps = [self.cv1(x)]
        for _ in range(3):
            maps.append(ops.maxpool(maps[-1], self.k, 1, self.k // 2))
        return self.cv2(ops.cat(maps, 1))

    def extra_repr(self) -> str:
        return f"k={self.k}"


# YOLOv5's concatenation and upsampling are spikedet's generic layers, registered under YOLOv5's names too
# (they work on any ``[..., C, H, W]`` and on spike trains).
V5Concat = register_block("V5Concat", channels="concat", neuron=False, repeatable=False)(SpikeConcat)
V5Upsample = register_block("V5Upsample", channels="keep", neuron=False, repeatable=False)(SpikeUpsample)


@register_block("V5Detect", channels="detect", neuron=False, repeatable=False)
class V5Detect(Detect):
    """YOLOv5's anchor-based detection head, speaking Ultralytics' ``Detect`` output format.

    Per level one 1x1 :class:`SpikeConv` (with bias) to ``na * (5 + nc)`` channels: for each of the ``na``
    anchors ``(x, y, w, h, objectness, class logits...)``. Decoding (YOLOv5 v6), with ``s`` the sigmoid of
    every output::

        xy = (2 * s_xy - 0.5 + grid) * stride        wh = (2 * s_wh) ** 2 * anchor       score = s_obj * s_cls

    In eval mode the head returns ``(y, raw)``, ``y`` of shape ``[B, 4 + nc, N]`` (box xywh in input pixels,
    then per-class scores in [0, 1]) as Ultralytics' NMS expects, ``raw = {"feats": inputs, "preds":
    per-level conv outputs}``. In training mode it returns ``raw`` only (spikedet reads the strides from
    ``raw["feats"]``). The head has no training loss here: ``trainable = False``.

    Args:
        nc: number of classes.
        ch: input channels of each level.
        anchors: per level a flat list ``[w0, h0, w1, h1, ...]`` of anchor sizes in input pixels.
    """

    trainable = False

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), anchors: list | tuple = ()):
        nn.Module.__init__(self)  # Detect.__init__ would build the anchor-free DFL branches
        anchors = [list(a) for a in anchors]
        if not anchors or len(anchors) != len(ch) or any(len(a) != len(anchors[0]) or len(a) % 2 for a in anchors):
            raise ValueError(
                f"V5Detect needs one flat [w0, h0, w1, h1, ...] anchor list per input level ({len(ch)} levels), "
                f"all of the same even length; got {anchors!r}"
            )
        self.nc = int(nc)
        self.nl = len(ch)
        self.na = len(anchors[0]) // 2
        self.no = self.nc + 5
        self.reg_max = 1  # no DFL: read by a few Ultralytics utilities
        self.stride = torch.zeros(self.nl)  # set by the model after a dry run
        # Anchor sizes in input pixels, [nl, na, 2]; a buffer so .to()/.half() move it and state_dict saves it.
        self.register_buffer("anchor_px", torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2))
        self.m = nn.ModuleList(SpikeConv(c, self.na * self.no, 1, bias=True) for c in ch)

    # Ultralytics' end-to-end (NMS-free) switch: YOLOv5 always needs NMS.
    @property
    def end2end(self) -> bool:
        return False

    @end2end.setter
    def end2end(self, value: bool) -> None:
        if value:
            LOGGER.warning("V5Detect has no NMS-free head; predictions go through NMS.")

    def bias_init(self) -> None:
        """No-op: the head is used with pretrained weights only."""

    def forward(self, x: list[Tensor]):
        preds = [conv(xi) for conv, xi in zip(self.m, x)]
        raw = {"feats": list(x), "preds": preds}
        if self.training:
            return raw
        y = self.decode(preds)
        return y if self.export else (y, raw)

    def decode(self, preds: list[Tensor]) -> Tensor:
        """Every level's conv output -> ``[B, 4 + nc, sum of na*H*W]`` (xywh pixels, scores). In eager inference
        each level is written in place into its columns of one tensor (no concatenation, no transposed copy:
        several times faster, the same values); traced for export or with gradients, one expression."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or any(p.requires_grad for p in preds):
            return torch.cat([self.decode_level(p, i) for i, p in enumerate(preds)], -1)
        sizes = [self.na * p.shape[2] * p.shape[3] for p in preds]
        out = preds[0].new_empty(preds[0].shape[0], 4 + self.nc, sum(sizes))
        start = 0
        for i, (p, size) in enumerate(zip(preds, sizes)):
            self.decode_level(p, i, out[:, :, start:start + size])
            start += size
        return out

    def decode_level(self, p: Tensor, i: int, out: Tensor | None = None) -> Tensor:
        """One level's conv output ``[B, na*(5+nc), H, W]`` -> ``[B, 4 + nc, na*H*W]`` (xywh pixels, scores), or
        written into ``out`` (columns of a larger tensor) when given."""
        b, _, h, w = p.shape
        s = p.view(b, self.na, self.no, h, w).sigmoid()
        ys, xs = torch.meshgrid(
            torch.arange(h, device=p.device, dtype=s.dtype), torch.arange(w, device=p.device, dtype=s.dtype), indexing="ij"
        )
        grid = torch.stack((xs, ys)).view(1, 1, 2, h, w)
        stride = self.stride[i].to(device=p.device, dtype=s.dtype)
        anchor = self.anchor_px[i].to(s.dtype).view(1, self.na, 2, 1, 1)
        xy = (s[:, :, 0:2] * 2 - 0.5 + grid) * stride
        wh = (s[:, :, 2:4] * 2) ** 2 * anchor
        if out is None:
            scores = s[:, :, 5:] * s[:, :, 4:5]
            return torch.cat((xy, wh, scores), 2).transpose(1, 2).reshape(b, 4 + self.nc, self.na * h * w)
        by_anchor = out.view(b, 4 + self.nc, self.na, h, w).transpose(1, 2)  # [B, na, 4+nc, H, W], a view of out
        by_anchor[:, :, 0:2] = xy
        by_anchor[:, :, 2:4] = wh
        torch.mul(s[:, :, 5:], s[:, :, 4:5], out=by_anchor[:, :, 4:])  # the scores, straight into place
        return out

    def extra_repr(self) -> str:
        return f"nc={self.nc}, na={self.na}, anchors_px={self.anchor_px.flatten(1).tolist()}"
