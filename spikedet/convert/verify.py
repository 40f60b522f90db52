"""The conversion check: does the converted network fire the codes the trained network fires?

:func:`verify` runs a converted model (on one path) and its re-parameterized float reference on the same
images and counts every neuron code that differs, the head outputs' relative error and, optionally, the
detections that agree. :func:`convert_and_verify` converts and checks in float64 (where both paths must be
exact: zero mismatches, head outputs equal to 1e-9) and reports float32 (the shipped precision) as rates.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from ultralytics.utils.metrics import box_iou
from ultralytics.utils.nms import non_max_suppression

from spikedet.convert.bitplane import convert
from spikedet.errors import SpikedetError
from spikedet.progress import progress
from spikedet.nn.conv import SpikePath
from spikedet.nn.mode import set_spike_mode
from spikedet.snn.neurons import SpikingNeuron
from spikedet.snn.spikes import SpikeTrain


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
def verify(reference: nn.Module, converted: nn.Module, images: Tensor, path: SpikePath = "bitplane",
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
        v.boxes_agreeing, v.boxes_compared = detection_agreement(out_ref, out_new)
    return v


def _raw(out) -> list[Tensor]:
    """The head's raw outputs (before decoding) as a list of tensors."""
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict):
        return [out[1][k] for k in ("boxes", "scores") if k in out[1]] or [out[0]]
    if isinstance(out, (tuple, list)):
        return [out[0]]
    return [out]


def detection_agreement(out_a, out_b, conf: float = 0.25, iou: float = 0.5) -> tuple[int, int]:
    """``(matched, compared)``: detections after NMS that match (same class, IoU >= iou) between two outputs."""
    a = non_max_suppression(out_a[0] if isinstance(out_a, (tuple, list)) else out_a, conf, 0.7)
    b = non_max_suppression(out_b[0] if isinstance(out_b, (tuple, list)) else out_b, conf, 0.7)
    matched = compared = 0
    for da, db in zip(a, b):
        compared += max(len(da), len(db))
        if len(da) and len(db):
            ious = box_iou(da[:, :4].float(), db[:, :4].float())
            same = da[:, 5:6] == db[:, 5].view(1, -1)
            ious = ious * same
            used = set()
            for i in range(len(da)):
                j = int(ious[i].argmax())
                if ious[i, j] >= iou and j not in used:
                    used.add(j)
                    matched += 1
    return matched, compared


@dataclass
class ConversionReport:
    float64: dict = field(default_factory=dict)
    float32: dict = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    imgsz: int = 0
    passed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def convert_and_verify(model: nn.Module, images: Tensor, names: list[str] | None = None, imgsz: int = 0) -> tuple[nn.Module, ConversionReport]:
    """Convert ``model`` and check the conversion.

    float64: zero code mismatches and head outputs equal to 1e-9 relative on both paths, else the check
    fails. float32 (the shipped precision): mismatch rate and detection agreement are reported.
    Returns the float32 converted model and the report.
    """
    trained = copy.deepcopy(model).float().eval()
    reference = copy.deepcopy(trained).reparameterize() if hasattr(trained, "reparameterize") else trained
    report = ConversionReport(images=[str(n) for n in (names or [])], imgsz=imgsz)

    steps = iter(progress([("float64", p) for p in ("integer", "bitplane")] + [("float32", p) for p in ("integer", "bitplane")],
                          "equivalence check", unit="check"))
    ref64 = copy.deepcopy(reference).double()
    conv64 = convert(ref64, images[:1].double())
    ok = True
    for _, path in (next(steps), next(steps)):
        v = verify(ref64, conv64, images.double(), path)
        report.float64[path] = v.as_dict()
        ok &= v.code_mismatches == 0 and v.max_relative_error <= 1e-9
    del ref64, conv64

    conv32 = convert(reference, images[:1])
    for _, path in (next(steps), next(steps)):
        report.float32[path] = verify(reference, conv32, images, path, boxes=True).as_dict()
    next(steps, None)  # closes the bar
    set_spike_mode(conv32, "integer")
    report.passed = bool(ok)
    return conv32, report
