"""The spike conv: every convolution of a spikedet model, on real values or on spikes.

A :class:`SpikeConv` is a ``Conv2d`` that knows its operation count and, once the converter has folded a
network (:mod:`spikedet.convert.bitplane`), how to consume integer codes. What the converter recorded lives
in the conv's typed :class:`ConvConversion`; which execution path it runs lives in ``spike_path``.

On spike-coded input (:mod:`spikedet.snn.spikes`) a converted conv runs one of two paths on the same
weights (IBRA-LIF paper, eqs. 12-15; weights hold ``W * scale / N`` per input channel):

- ``integer``: one conv over the (summed / concatenated) integer codes ``q``; the fast path for serving;
- ``bitplane``: each train's spike planes are convolved separately and accumulated with weight ``2**b``
  (unary codes: weight 1 per thermometer step); the bias and constant terms are added once, after the
  planes are summed. Every conv then only sees 0/1 (or -1/0/+1) spikes.

Codes whose value 0 is not code 0 (zero offsets, A2S neurons) add a constant map ``conv(zero)``, which each
path removes. A conv that was never converted computes on the real values the codes stand for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikedet.errors import SpikedetError
from spikedet.nn import reparam
from spikedet.nn.integer import IntegerConv, image_codes
from spikedet.snn.code import SpikeCode
from spikedet.snn.spikes import SpikeTrain

SpikePath = Literal["integer", "bitplane", "exact"]
#: ``exact`` is the integer deployment model's arithmetic (:mod:`spikedet.nn.integer`), for convs that hold it.
SPIKE_PATHS = ("integer", "bitplane", "exact")


@dataclass(frozen=True)
class InputTerm:
    """One spike train feeding a conv: its input channels and its code."""

    offset: int
    channels: int
    levels: int
    n: float
    zero: int
    encoding: str
    scaled: bool
    rest: int | None = None

    @property
    def code(self) -> SpikeCode:
        return SpikeCode(self.levels, self.n, self.zero, self.encoding, self.rest)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ConvConversion:
    """What the converter recorded for one conv (see :meth:`from_terms`).

    Attributes:
        terms: the spike trains the weights were folded for, in input-channel order.
        zero_codes: per input channel, the code standing for 0 (summed over summed trains), or None when all
            are 0: the integer path convolves ``q`` and removes ``conv(zero_codes)``.
        plane_offsets: per input channel, ``zero - offset``: what the bit-plane path, which convolves
            ``q - offset``, removes; None when all are 0.
        constants: the constant maps per input size, computed once (see :func:`constant_terms`).
    """

    terms: list[InputTerm]
    zero_codes: Tensor | None
    plane_offsets: Tensor | None
    constants: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_terms(cls, terms: list[InputTerm], channels: int, dtype: torch.dtype) -> "ConvConversion":
        zeros = torch.zeros(channels, dtype=torch.float64)
        plane_zeros = torch.zeros_like(zeros)
        for t in terms:
            code = t.code
            zeros[t.offset : t.offset + t.channels] += code.zero
            plane_zeros[t.offset : t.offset + t.channels] += code.zero - code.offset
        return cls(
            list(terms),
            zeros.to(dtype) if bool(zeros.any()) else None,
            plane_zeros.to(dtype) if bool(plane_zeros.any()) else None,
        )


class SpikeConv(nn.Conv2d):
    """A ``Conv2d`` that knows its operation count and runs on spikes once converted.

    ``trained_macs_per_pixel`` is set on convs produced by merging a chain (RepConv, SepConv tail): the
    multiply-accumulates per output pixel of the chain as it was trained, so the cheapest ANN form of the
    network can be counted after re-parameterization.
    """

    # Class-level defaults: the fields of a conv that was never converted (and of convs pickled by
    # spikedet versions before these fields existed).
    trained_macs_per_pixel: int | None = None
    conversion: ConvConversion | None = None
    spike_path: SpikePath = "integer"
    report_name: str = ""
    integer: IntegerConv | None = None

    def forward(self, x):
        if self.spike_path == "exact":
            return self.exact_forward(x)
        if isinstance(x, Tensor):
            return super().forward(x)
        return self.spike_forward(x)

    def set_integer(self, state: IntegerConv | None) -> None:
        """Hold the integer form of this conv (an integer deployment model), or None."""
        self.integer = state

    def exact_forward(self, x) -> Tensor:
        """The integer model's conv: int accumulators of integer input (see :mod:`spikedet.nn.integer`)."""
        return self.integer.hand_on(self.integer_accumulators(x))

    def integer_accumulators(self, x) -> Tensor:
        """The integer accumulators (float64, integer-valued) of this integer conv for its input ``x``."""
        state = self.integer
        if state is None:
            raise SpikedetError(f"{self.report_name or 'conv'}: the exact path needs an integer model")
        if isinstance(x, Tensor) and not state.image:
            raise SpikedetError(f"{self.report_name or 'conv'}: the integer model got real values where it "
                                "expects spike codes")
        dtype = torch.float32 if state.float32_exact else torch.float64
        return state.accumulate(self.integer_input(x, dtype), self.stride, self.padding, self.groups)

    def integer_input(self, x, dtype: torch.dtype = torch.float64) -> Tensor:
        """The integers a conv reads, in ``dtype``: the image (a tensor) as ``round(255 x)``, or the spike codes
        (summed and concatenated as its trains arrive)."""
        if isinstance(x, Tensor):
            return image_codes(x).to(dtype)
        return self._combined_codes(x.terms(), dtype)

    # -- conversion state ---------------------------------------------------------------------------
    def set_spike_mode(self, path: SpikePath, name: str = "") -> None:
        """Choose the execution path on spikes; ``name`` labels the conv in reports and errors."""
        if path not in SPIKE_PATHS:
            raise SpikedetError(f"spike path must be one of {', '.join(SPIKE_PATHS)}, got {path!r}")
        self.spike_path = path
        self.report_name = name

    def set_conversion(self, terms: list[InputTerm] | None) -> None:
        """Record the trains the (already folded) weights consume; None marks the conv unconverted."""
        self.conversion = None if terms is None else ConvConversion.from_terms(terms, self.in_channels, self.weight.dtype)

    # -- operation counts ---------------------------------------------------------------------------
    def macs_per_pixel(self) -> int:
        k = self.kernel_size[0] * self.kernel_size[1]
        return self.in_channels * self.out_channels * k // self.groups

    def macs(self, out_hw: tuple[int, int]) -> int:
        """``C_in * C_out * k^2 * H_out * W_out / groups`` for one image."""
        return self.macs_per_pixel() * out_hw[0] * out_hw[1]

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_weights(
        cls, weight: Tensor, bias: Tensor | None, stride=1, padding=0, groups: int = 1
    ) -> "SpikeConv":
        c_out, c_in_g, kh, kw = weight.shape
        conv = cls(c_in_g * groups, c_out, (kh, kw), stride, padding, groups=groups, bias=bias is not None)
        conv.to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv

    def merged_with(self, bn: nn.BatchNorm2d | None) -> "SpikeConv":
        """A single conv equal to ``bn(self(x))`` (eval mode)."""
        if bn is None:
            return self
        w, b = reparam.fold_bn(self.weight.detach(), None if self.bias is None else self.bias.detach(), bn)
        merged = SpikeConv.from_weights(w, b, self.stride, self.padding, self.groups)
        merged.trained_macs_per_pixel = self.trained_macs_per_pixel
        return merged

    # -- on spikes ----------------------------------------------------------------------------------
    def spike_forward(self, x) -> Tensor:
        """What the conv computes on spike-coded input (a train, a sum or a concat of trains)."""
        terms = x.terms()
        if self.conversion is None:  # not converted: the integer model, on real values
            return F.conv2d(x.value(), self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        self._check_terms(terms)
        return self._bitplane(terms) if self.spike_path == "bitplane" else self._integer(terms)

    def _check_terms(self, terms: list[tuple[SpikeTrain, int]]) -> None:
        expected = self.conversion.terms
        if len(terms) != len(expected) or any(
            off != e.offset or t.channels != e.channels or t.code.n != e.n or t.code.zero != e.zero
            or t.code.rest != e.rest
            for (t, off), e in zip(terms, expected)
        ):
            raise SpikedetError(f"{self.report_name}: spike input differs from the one it was converted for")

    def _combined_codes(self, terms, dtype: torch.dtype | None = None) -> Tensor:
        """The codes the conv receives: trains at the same channels summed, channel groups concatenated."""
        dtype = dtype or self.weight.dtype
        groups: dict[int, Tensor] = {}
        for t, off in terms:
            q = t.codes if t.codes.dtype == dtype else t.codes.to(dtype)
            groups[off] = groups[off] + q if off in groups else q
        parts = [groups[off] for off in sorted(groups)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-3)

    def _integer(self, terms) -> Tensor:
        # One conv over the codes q themselves; the values (q - zero) * scale / N differ by a constant map.
        q = self._combined_codes(terms)
        constant = constant_terms(self, q.shape, "integer", self.weight.dtype, q.device)
        bias = self.bias if constant is None else constant.bias
        y = F.conv2d(q, self.weight, bias, self.stride, self.padding, self.dilation, self.groups)
        return remove_constant(y, constant)

    def _bitplane(self, terms) -> Tensor:
        acc: Tensor | None = None
        dtype = self.weight.dtype
        for t, off in terms:
            if self.groups == 1:
                weight = self.weight[:, off : off + t.channels]
            elif off == 0 and t.channels == self.in_channels:
                weight = self.weight
            else:  # pragma: no cover - the converter refuses this layout
                raise SpikedetError(f"{self.report_name}: grouped conv fed by several trains")
            planes = t.code.spike_planes(t.codes)  # 0/1 planes, or -1/0/+1 for signed codes
            for plane, w in zip(planes, t.code.plane_weights()):
                if not bool(plane.any()):
                    continue  # a silent plane costs nothing and adds nothing
                part = F.conv2d(plane.to(dtype), weight, None, self.stride, self.padding, self.dilation, self.groups)
                if w != 1.0:
                    part = part * w
                acc = part if acc is None else acc + part
        shape = list(terms[0][0].codes.shape)
        shape[-3] = self.in_channels
        if acc is None:  # no spikes at all
            acc = F.conv2d(torch.zeros(shape, dtype=dtype, device=self.weight.device), self.weight, None, self.stride,
                           self.padding, self.dilation, self.groups)
        if self.bias is not None:  # once, after the planes are summed
            acc = acc + self.bias.view(1, -1, 1, 1)
        constant = constant_terms(self, shape, "bitplane", acc.dtype, acc.device)
        return remove_constant(acc, constant, uniform_in_bias=False)


# -- constant-code terms --------------------------------------------------------------------------

class ConstantTerms(NamedTuple):
    """What a per-input-channel constant code (zero offsets) adds to a conv's output, split for speed.

    ``conv(constant field)`` is one value per output channel away from the borders (where the receptive
    field meets the conv's zero padding it differs): the integer path folds that uniform part into the
    conv's bias, and only the border rows and columns are corrected afterwards.
    """

    bias: Tensor | None  # the conv's bias minus the uniform part (or the bias alone when nothing is uniform)
    uniform: Tensor | None  # [1, C_out, 1, 1]
    full: Tensor | None  # the whole map, for outputs too small to have an interior
    border: Tensor | None  # the map minus its uniform part (nonzero on the border only)
    widths: tuple[int, int, int, int]  # top, bottom, left, right border widths


def constant_terms(conv: SpikeConv, input_shape, path: SpikePath, dtype, device) -> ConstantTerms | None:
    """The :class:`ConstantTerms` of ``path`` at this input size, kept in the conv's conversion.

    The key holds the parameters' storage and version counters, so loading or moving weights recomputes it.
    """
    conversion = conv.conversion
    per_channel = conversion.zero_codes if path == "integer" else conversion.plane_offsets
    if per_channel is None:
        return None
    params = tuple((p.data_ptr(), p._version) for p in (conv.weight, conv.bias) if p is not None)
    key = (path, tuple(input_shape[-2:]), dtype, device, params)
    cache = conversion.constants
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = _constant_map(conv, per_channel.to(device=device, dtype=dtype), tuple(input_shape[-2:]))
    return cache[key]


def remove_constant(y: Tensor, constant: ConstantTerms | None, uniform_in_bias: bool = True) -> Tensor:
    """Subtract the constant map from ``y`` (a fresh conv output), but for the uniform part when the conv
    already added ``constant.bias``."""
    if constant is None:
        return y
    if constant.full is not None:
        return y.sub_(constant.full)
    if not uniform_in_bias:
        y.sub_(constant.uniform)
    if constant.border is None:
        return y
    top, bottom, left, right = constant.widths
    border = constant.border
    h, w = y.shape[-2:]
    if top:
        y[..., :top, :] -= border[..., :top, :]
    if bottom:
        y[..., h - bottom :, :] -= border[..., h - bottom :, :]
    if left:
        y[..., top : h - bottom, :left] -= border[..., top : h - bottom, :left]
    if right:
        y[..., top : h - bottom, w - right :] -= border[..., top : h - bottom, w - right :]
    return y


def _constant_map(conv: SpikeConv, per_channel: Tensor, hw: tuple[int, int]) -> ConstantTerms:
    field_ = per_channel.view(1, -1, 1, 1).expand(1, -1, *hw)
    full = F.conv2d(field_, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    widths = []
    for axis in (0, 1):
        size, out = hw[axis], full.shape[2 + axis]
        k = (conv.kernel_size[axis] - 1) * conv.dilation[axis] + 1
        s, p = conv.stride[axis], conv.padding[axis]
        low = sum(1 for o in range(out) if o * s - p < 0)
        high = sum(1 for o in range(out) if o * s - p + k > size)
        widths += [low, high]
    top, bottom, left, right = widths
    h, w = full.shape[-2:]
    if top + bottom >= h or left + right >= w:  # no interior: subtract the whole map
        return ConstantTerms(conv.bias, None, full, None, (0, 0, 0, 0))
    uniform = full[..., top : top + 1, left : left + 1].clone()  # not a view: the full map can be freed
    bias = -uniform.reshape(-1) if conv.bias is None else conv.bias.to(full.dtype) - uniform.reshape(-1)
    border = full - uniform if any(widths) else None
    return ConstantTerms(bias, uniform, None, border, (top, bottom, left, right))
