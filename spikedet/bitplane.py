"""The bit-plane inference model: conversion of a trained network and its two execution paths.

:func:`convert` turns a trained spikedet model into the network the IBRA-LIF paper runs at inference
(eqs. 12-15), without retraining:

1. re-parameterize: RepConv and SepConv tails merged into single 3x3 convs, every BN folded;
2. trace which spike trains feed each conv (one train, a sum of trains from a residual add, or a concat of
   trains with different codes) and fold each train's ``scale / N`` into the conv's weights per input
   channel (``W^N = W / N``), so the conv consumes integer codes directly;
3. zero-code offsets (codes whose value 0 is not code 0) become a constant map added once, with the bias.

A converted conv then runs one of two paths on the same weights:

- ``integer``: one conv over the (summed / concatenated) integer codes; the fast path for serving.
- ``bitplane``: each train's ``B`` binary spike planes ``s_b`` are convolved separately and accumulated with
  weight ``2**b`` (unary codes: each thermometer step with weight 1); bias and constant terms are added
  once, after the planes are summed. This is the faithful simulation: every conv only sees 0/1 spikes.

Both give the same codes everywhere in float64 (:func:`verify` checks it against the re-parameterized
float model, the "integer model"); float32 sums in a different order flip a few codes that sit exactly on
a rounding boundary, so there the mismatch rate and detection agreement are reported.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikedet.errors import SpikedetError
from spikedet.neurons import SpikeCode, SpikingNeuron
from spikedet.nn.layers import SpikeConv
from spikedet.spikes import SpikeTrain, is_spiking

Path_ = Literal["integer", "bitplane"]


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

    def as_dict(self) -> dict:
        return asdict(self)


def set_spike_mode(model: nn.Module, path: Path_ | None) -> nn.Module:
    """Switch a (re-parameterized) model to spike mode on ``path``, or back to float mode with ``None``.

    In spike mode neurons pass integer codes (:class:`~spikedet.spikes.SpikeTrain`) and every conv that
    receives spikes records what it receives; convs of a converted model run ``path``.
    """
    if path not in (None, "integer", "bitplane"):
        raise SpikedetError(f"spike path must be 'integer' or 'bitplane', got {path!r}")
    if path is not None and not _is_reparameterized(model):
        raise SpikedetError("spike mode needs a re-parameterized model: call model.reparameterize() first")
    for name, m in model.named_modules():
        if isinstance(m, SpikingNeuron):
            m.spike_mode = path is not None
            m.report_name = name
        elif isinstance(m, SpikeConv):
            m.spike_path = path or "integer"
            m.report_name = name
    model.spike_path = path
    return model


def _is_reparameterized(model: nn.Module) -> bool:
    fused = getattr(model, "is_fused", None)
    return bool(fused()) if callable(fused) else True


# -- the conv on spikes --------------------------------------------------------------------------

def spike_conv_forward(conv: SpikeConv, x) -> Tensor:
    """What a :class:`SpikeConv` computes when it receives spike-coded input."""
    from spikedet import energy

    terms = x.terms()
    if conv.input_terms is None:  # not converted: the integer model, on real values
        y = F.conv2d(x.value(), conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    else:
        _check_terms(conv, terms)
        y = _bitplane_conv(conv, terms) if conv.spike_path == "bitplane" else _integer_conv(conv, terms)
    energy.record_spike_conv(conv, x, terms, y)
    return y


def _check_terms(conv: SpikeConv, terms: list[tuple[SpikeTrain, int]]) -> None:
    expected = conv.input_terms
    if len(terms) != len(expected) or any(
        off != e.offset or t.channels != e.channels or t.code.n != e.n or t.code.zero != e.zero or t.code.rest != e.rest
        for (t, off), e in zip(terms, expected)
    ):
        raise SpikedetError(f"{conv.report_name}: spike input differs from the one it was converted for")


def _combined_codes(conv: SpikeConv, terms) -> Tensor:
    """The codes the conv receives: trains at the same channels summed, channel groups concatenated."""
    dtype = conv.weight.dtype
    groups: dict[int, Tensor] = {}
    for t, off in terms:
        q = t.codes if t.codes.dtype == dtype else t.codes.to(dtype)
        groups[off] = groups[off] + q if off in groups else q
    parts = [groups[off] for off in sorted(groups)]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-3)


def _integer_conv(conv: SpikeConv, terms) -> Tensor:
    # One conv over the codes q themselves; the values (q - zero) * scale / N differ by a constant map.
    q = _combined_codes(conv, terms)
    constant = _constant_terms(conv, q.shape, conv.zero_codes, "integer", conv.weight.dtype, q.device)
    bias = conv.bias if constant is None else constant.bias
    y = F.conv2d(q, conv.weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return _remove_constant(y, constant)


def _bitplane_conv(conv: SpikeConv, terms) -> Tensor:
    acc: Tensor | None = None
    dtype = conv.weight.dtype
    for t, off in terms:
        if conv.groups == 1:
            weight = conv.weight[:, off : off + t.channels]
        elif off == 0 and t.channels == conv.in_channels:
            weight = conv.weight
        else:  # pragma: no cover - converter refuses this layout
            raise SpikedetError(f"{conv.report_name}: grouped conv fed by several trains")
        planes = t.code.spike_planes(t.codes)  # 0/1 planes, or -1/0/+1 for signed codes
        for plane, w in zip(planes, t.code.plane_weights()):
            if not bool(plane.any()):
                continue  # a silent plane costs nothing and adds nothing
            part = F.conv2d(plane.to(dtype), weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
            if w != 1.0:
                part = part * w
            acc = part if acc is None else acc + part
    shape = list(terms[0][0].codes.shape)
    shape[-3] = conv.in_channels
    if acc is None:  # no spikes at all
        acc = F.conv2d(torch.zeros(shape, dtype=dtype, device=conv.weight.device), conv.weight, None, conv.stride,
                       conv.padding, conv.dilation, conv.groups)
    if conv.bias is not None:  # once, after the planes are summed
        acc = acc + conv.bias.view(1, -1, 1, 1)
    constant = _constant_terms(conv, shape, conv.plane_offsets, "bitplane", acc.dtype, acc.device)
    return _remove_constant(acc, constant, uniform_in_bias=False)


class _ConstantTerms(NamedTuple):
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


def _constant_terms(conv: SpikeConv, input_shape, per_channel: Tensor | None, key_name: str, dtype,
                    device) -> _ConstantTerms | None:
    """The :class:`_ConstantTerms` of this input size, cached on the conv.

    The key holds the parameters' storage and version counters, so loading or moving weights recomputes it.
    """
    if per_channel is None:
        return None
    params = tuple((p.data_ptr(), p._version) for p in (conv.weight, conv.bias) if p is not None)
    key = (key_name, tuple(input_shape[-2:]), dtype, device, params)
    cache = conv.__dict__.setdefault("_offset_cache", {})
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = _constant_map(conv, per_channel.to(device=device, dtype=dtype), tuple(input_shape[-2:]))
    return cache[key]


def _remove_constant(y: Tensor, constant: _ConstantTerms | None, uniform_in_bias: bool = True) -> Tensor:
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


def _constant_map(conv: SpikeConv, per_channel: Tensor, hw: tuple[int, int]) -> _ConstantTerms:
    field = per_channel.view(1, -1, 1, 1).expand(1, -1, *hw)
    full = F.conv2d(field, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
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
        return _ConstantTerms(conv.bias, None, full, None, (0, 0, 0, 0))
    uniform = full[..., top : top + 1, left : left + 1].clone()  # not a view: the full map can be freed
    bias = -uniform.reshape(-1) if conv.bias is None else conv.bias.to(full.dtype) - uniform.reshape(-1)
    border = full - uniform if any(widths) else None
    return _ConstantTerms(bias, uniform, None, border, (top, bottom, left, right))


# -- conversion ----------------------------------------------------------------------------------

@torch.no_grad()
def trace_inputs(model: nn.Module, images: Tensor) -> dict[str, list[tuple[SpikeTrain, int]]]:
    """Run ``images`` in spike mode and return, per conv that receives spikes, the trains it receives."""
    seen: dict[str, list[tuple[SpikeTrain, int]]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, SpikeConv):
            def hook(mod, args, name=name):
                if is_spiking(args[0]):
                    seen[name] = args[0].terms()
            hooks.append(m.register_forward_pre_hook(hook))
    try:
        model(images)
    finally:
        for h in hooks:
            h.remove()
    return seen


@torch.no_grad()
def convert(model: nn.Module, sample: Tensor) -> nn.Module:
    """A converted copy of ``model`` (see the module docstring); ``sample`` is one or more images ``[B,3,H,W]``.

    The input structure of every conv is read from a trace of ``sample``; it does not depend on the image
    content, only on the architecture.
    """
    if getattr(model, "converted", False):
        raise SpikedetError("the model is already converted (its weights hold W / N): convert the trained model")
    converted = copy.deepcopy(model).eval()
    if hasattr(converted, "reparameterize") and not _is_reparameterized(converted):
        converted.reparameterize()
    set_spike_mode(converted, "integer")
    dtype = next(converted.parameters()).dtype
    seen = trace_inputs(converted, sample.to(dtype))
    modules = dict(converted.named_modules())
    for name, terms in seen.items():
        fold_conv(modules[name], terms)
    converted.converted = True
    return converted


def fold_conv(conv: SpikeConv, terms: list[tuple[SpikeTrain, int]]) -> None:
    """Fold each train's per-channel ``scale / N`` into ``conv``'s weight and record its input terms."""
    name = getattr(conv, "report_name", "conv")
    factor = torch.full((conv.in_channels,), float("nan"), dtype=torch.float64, device=conv.weight.device)
    specs = []
    for train, off in terms:
        f = train.factor(torch.float64)
        current = factor[off : off + train.channels]
        known = ~torch.isnan(current)
        if bool(known.any()) and not torch.equal(current[known], f[known]):
            raise SpikedetError(
                f"{name}: spike trains with different scales are summed into the same channels; "
                "give the summed neurons equal N and scale"
            )
        factor[off : off + train.channels] = f
        c = train.code
        specs.append(InputTerm(off, train.channels, c.levels, c.n, c.zero, c.encoding, train.scale is not None, c.rest))
    if bool(torch.isnan(factor).any()):
        raise SpikedetError(f"{name}: some input channels receive no spikes")
    if conv.groups > 1 and len(specs) > 1:
        raise SpikedetError(f"{name}: a grouped conv fed by several spike trains is not supported")
    w = conv.weight.double()
    if conv.groups == 1:
        w = w * factor.view(1, -1, 1, 1)
    else:
        g, cg = conv.groups, conv.in_channels // conv.groups
        w = (w.view(g, -1, cg, *w.shape[2:]) * factor.view(g, 1, cg, 1, 1)).view_as(w)
    conv.weight.data = w.to(conv.weight.dtype)
    _set_terms(conv, specs)


def _set_terms(conv: SpikeConv, specs: list[InputTerm]) -> None:
    """Record a conv's input terms and the constant codes each path must remove: the value is
    ``(q - zero) * scale / N``; the integer path convolves ``q``, the bit-plane path ``q - offset``."""
    zeros = torch.zeros(conv.in_channels, dtype=torch.float64)
    plane_zeros = torch.zeros_like(zeros)
    for s in specs:
        code = SpikeCode(s.levels, s.n, s.zero, s.encoding, s.rest)
        zeros[s.offset : s.offset + s.channels] += code.zero
        plane_zeros[s.offset : s.offset + s.channels] += code.zero - code.offset
    conv.input_terms = specs
    conv.zero_codes = zeros.to(conv.weight.dtype) if bool(zeros.any()) else None
    conv.plane_offsets = plane_zeros.to(conv.weight.dtype) if bool(plane_zeros.any()) else None


def restore_conversion(model: nn.Module, terms: dict[str, list[dict]]) -> None:
    """Mark convs of a loaded converted model with their input terms (weights are already folded)."""
    modules = dict(model.named_modules())
    for name, specs in terms.items():
        conv = modules.get(name)
        if not isinstance(conv, SpikeConv):
            raise SpikedetError(f"converted weights name a conv {name!r} that the model does not have")
        _set_terms(conv, [InputTerm(**s) for s in specs])
    model.converted = True


def conversion_terms(model: nn.Module) -> dict[str, list[dict]]:
    return {
        name: [t.as_dict() for t in m.input_terms]
        for name, m in model.named_modules()
        if isinstance(m, SpikeConv) and m.input_terms is not None
    }


# -- verification --------------------------------------------------------------------------------

@dataclass
class Verification:
    dtype: str
    codes_total: int
    code_mismatches: int
    max_relative_error: float
    boxes_compared: int = 0
    boxes_agreeing: int = 0

    @property
    def mismatch_rate(self) -> float:
        return self.code_mismatches / max(self.codes_total, 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "mismatch_rate": self.mismatch_rate}


@torch.no_grad()
def neuron_codes(model: nn.Module, images: Tensor) -> tuple[list[Tensor], object]:
    """Codes of every neuron (in order of firing) and the model output, in float mode or spike mode."""
    codes: list[Tensor] = []

    def hook(mod, args, out):
        codes.append(out.codes.long() if isinstance(out, SpikeTrain) else torch.round(_value_code(mod, out)).long())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, SpikingNeuron)]
    try:
        out = model(images)
    finally:
        for h in hooks:
            h.remove()
    return codes, out


def _value_code(neuron: SpikingNeuron, out: Tensor) -> Tensor:
    """The code of an emitted value: ``O / scale * N + zero``."""
    scale = neuron._channel_scale(out)
    x = out / scale if scale is not None else out
    return x * neuron.code.n + neuron.code.zero


@torch.no_grad()
def verify(reference: nn.Module, converted: nn.Module, images: Tensor, path: Path_ = "bitplane",
           boxes: bool = False) -> Verification:
    """Compare ``converted`` (on ``path``) with the float ``reference`` model on ``images``; ``boxes`` also
    counts the detections that agree (same outputs, no extra forward pass)."""
    dtype = next(converted.parameters()).dtype
    set_spike_mode(converted, path)
    codes_ref, out_ref = neuron_codes(reference, images.to(dtype))
    codes_new, out_new = neuron_codes(converted, images.to(dtype))
    if len(codes_ref) != len(codes_new):
        raise SpikedetError("the converted model fires a different number of neuron layers")
    total = sum(c.numel() for c in codes_ref)
    mismatches = sum(int((a != b).sum()) for a, b in zip(codes_ref, codes_new))
    raw_ref, raw_new = _raw(out_ref), _raw(out_new)
    rel = max(
        float((a - b).abs().max() / a.abs().max().clamp_min(1e-30)) for a, b in zip(raw_ref, raw_new)
    )
    v = Verification(str(dtype).replace("torch.", ""), total, mismatches, rel)
    if boxes:
        from spikedet.workflow import detection_agreement

        v.boxes_agreeing, v.boxes_compared = detection_agreement(out_ref, out_new)
    return v


def _raw(out) -> list[Tensor]:
    """The head's raw outputs (before decoding) as a list of tensors."""
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict):
        return [out[1][k] for k in ("boxes", "scores") if k in out[1]] or [out[0]]
    if isinstance(out, (tuple, list)):
        return [out[0]]
    return [out]
