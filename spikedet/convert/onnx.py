"""ONNX export of the integer spiking model, checked against PyTorch with onnxruntime.

The exported graph is the converted model on its integer path (integer codes, ``W * scale / N`` folded
into the weights, constant terms for zero offsets) at a fixed input size. ``Round`` in ONNX rounds half to
even like ``torch.round``, so the graph computes the same codes; float32 sums in a different order still
flip the odd code that sits on a rounding boundary, which then propagates: the check reports the
code-mismatch rate and how many detections agree.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikedet.convert.verify import detection_agreement
from spikedet.io.outputs import output_file
from spikedet.progress import progress
from spikedet.snn.neurons import SpikingNeuron


class _Exportable(nn.Module):
    """The model's decoded output, plus (optionally) every neuron's codes as extra outputs."""

    def __init__(self, model: nn.Module, with_codes: bool):
        super().__init__()
        self.model = model
        self.with_codes = with_codes

    def forward(self, x):
        codes = []
        hooks = []
        if self.with_codes:
            hooks = [m.register_forward_hook(lambda mod, i, o: codes.append(o.codes))
                     for m in self.model.modules() if isinstance(m, SpikingNeuron)]
        try:
            y = self.model(x)
        finally:
            for h in hooks:
                h.remove()
        y = y[0] if isinstance(y, (tuple, list)) else y
        return (y, *codes) if self.with_codes else y


def export_onnx(model: nn.Module, path: str | Path, imgsz: int = 640, opset: int = 17, with_codes: bool = False) -> Path:
    """Write the spike-mode (integer path) ``model`` to ONNX; output ``output0`` is ``[1, 4 + nc, anchors]``."""
    path = output_file(path, (".onnx",))
    wrapper = _Exportable(model, with_codes).eval()
    param = next(model.parameters())
    dummy = torch.zeros(1, 3, imgsz, imgsz, dtype=param.dtype, device=param.device)
    names = ["output0"] + ([f"codes{i}" for i in range(sum(isinstance(m, SpikingNeuron) for m in model.modules()))] if with_codes else [])
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values baked into the graph
        torch.onnx.export(wrapper, dummy, str(path), opset_version=opset, dynamo=False, input_names=["images"], output_names=names)
    model.eval()  # the exporter restores the wrapper's training flag on every submodule
    write_metadata(path, ultralytics_metadata(model, imgsz, opset))
    return path


def ultralytics_metadata(model: nn.Module, imgsz: int, opset: int) -> dict:
    """The metadata Ultralytics' exporter writes into its ONNX files (``ultralytics.engine.exporter``), so that
    ``YOLO("model.onnx")`` knows the class names, stride, size and task of a spikedet export."""
    from datetime import datetime

    from ultralytics import __version__ as ultralytics_version

    from spikedet import __version__

    head = model.model[-1] if hasattr(model, "model") else model
    return {
        "description": "spikedet integer spiking detector (IBRA-LIF, SpikeYOLO architecture); input float [0, 1]",
        "author": "spikedet",
        "date": datetime.now().astimezone().isoformat(),
        "version": ultralytics_version,  # what Ultralytics' backends read; spikedet's own below
        "spikedet_version": __version__,
        "license": "AGPL-3.0 License",
        "docs": "https://github.com/spikedet/spikedet",
        "stride": int(max(model.stride)) if hasattr(model, "stride") else 32,
        "task": "detect",
        "head": type(head).__name__,
        "batch": 1,
        "imgsz": [imgsz, imgsz],
        "names": {int(k): v for k, v in dict(model.names).items()},
        "args": {"batch": 1, "imgsz": imgsz, "half": False, "int8": False, "dynamic": False, "simplify": False,
                 "opset": opset, "nms": False},
        "channels": 3,
        "end2end": False,
    }


def write_metadata(path: Path, metadata: dict) -> None:
    """Add ``metadata`` to an ONNX file as Ultralytics does: one string entry (``str(value)``) per key."""
    import onnx

    graph = onnx.load(str(path))
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(graph, str(path))


@dataclass
class OnnxCheck:
    images: int
    codes_total: int
    code_mismatches: int
    boxes_agreeing: int
    boxes_compared: int
    max_abs_output_difference: float

    @property
    def mismatch_rate(self) -> float:
        return self.code_mismatches / max(self.codes_total, 1)

    @property
    def agreement(self) -> float:
        return self.boxes_agreeing / self.boxes_compared if self.boxes_compared else 1.0

    def as_dict(self) -> dict:
        return {**asdict(self), "mismatch_rate": self.mismatch_rate, "agreement": self.agreement}


@torch.no_grad()
def check_onnx(model: nn.Module, path_with_codes: str | Path, images: torch.Tensor) -> OnnxCheck:
    """Run ``images`` (``[B, 3, S, S]``) through onnxruntime and PyTorch; compare codes and detections."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path_with_codes), providers=["CPUExecutionProvider"])
    wrapper = _Exportable(model, True).eval()
    total = mismatches = matched = compared = 0
    worst = 0.0
    param = next(model.parameters())
    for image in progress(images, "onnxruntime check", len(images)):
        x = image[None].to(device=param.device, dtype=param.dtype)
        ours = [t.cpu().numpy() for t in wrapper(x)]
        theirs = session.run(None, {"images": x.cpu().numpy()})
        total += sum(a.size for a in ours[1:])
        mismatches += sum(int((a != b).sum()) for a, b in zip(ours[1:], theirs[1:]))
        worst = max(worst, float(np.abs(ours[0] - theirs[0]).max()))
        m, c = detection_agreement(torch.from_numpy(theirs[0]), torch.from_numpy(ours[0]))
        matched, compared = matched + m, compared + c
    return OnnxCheck(len(images), total, mismatches, matched, compared, worst)
