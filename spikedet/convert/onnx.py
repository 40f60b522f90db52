"""ONNX export of the integer spiking model, checked against PyTorch with onnxruntime.

The exported graph is the converted model on its integer path (integer codes, ``W * scale / N`` folded
into the weights, constant terms for zero offsets) at a fixed input size. ``Round`` in ONNX rounds half to
even like ``torch.round``, so the graph computes the same codes; float32 sums in a different order still
flip the odd code that sits on a rounding boundary, which then propagates: the check reports the
code-mismatch rate and how many detections agree.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikedet.convert.verify import detection_agreement
from spikedet.errors import SpikedetError
from spikedet.io.outputs import output_file
from spikedet.nn.conv import SpikeConv
from spikedet.progress import progress
from spikedet.snn.neurons import SpikingNeuron
from spikedet.snn.spikes import SpikeTrain

#: ONNX metadata key of the spike-count outputs' description (:func:`count_points`)
COUNTS_KEY = "spikedet.spike_counts"


def code_counts(codes: torch.Tensor, spikes_per_code: torch.Tensor) -> torch.Tensor:
    """``[spikes, silent elements, sum of codes]`` of a spike train (int64 ``[3]``, exact): one lookup
    (``Gather``) of a ``[codes, 3]`` table and one sum (a per-code histogram by scatter-add was slower)."""
    table = torch.stack([spikes_per_code, (spikes_per_code == 0).to(torch.int64),
                         torch.arange(len(spikes_per_code), dtype=torch.int64)], 1).to(codes.device)
    return table[codes.reshape(-1).to(torch.int64)].sum(0)


class _CountPoints:
    """Forward hooks that count every spike train a conv reads and every train a neuron fires, in call order
    (the order in which ``measure.energy`` records convs and neurons): ``counts`` (one per distinct codes
    tensor) and ``points``, what each is for (see :func:`count_points`)."""

    def __init__(self, model: nn.Module, form: str = "counts"):
        self.model = model
        self.form = form
        self.counts: list[torch.Tensor] = []
        self.points: list[dict] = []
        self._seen: dict[tuple, int] = {}
        self._alive: list[torch.Tensor] = []  # keeps memory from being reused while the pass runs
        self._convs = self._neurons = 0
        self.tables: dict[int, list[int]] = {}  # form "codes": spikes per code of each output

    def _index(self, train) -> int:
        codes = train.codes  # a conv may read a view of what the neuron fired: count it once
        table = train.code.spike_table().to(torch.int64)
        # the same memory holds the same codes: a contiguous reshape is the same train
        shape = tuple(int(n) for n in codes.shape)  # ints: while tracing, sizes are tensors (hashed by identity)
        layout = ("contiguous", math.prod(shape)) if codes.is_contiguous() else (shape, tuple(codes.stride()))
        key = (codes.data_ptr(), layout, tuple(table.tolist()))
        if key not in self._seen:
            self._seen[key] = len(self.counts)
            self._alive.append(codes)
            if self.form == "counts":
                self.counts.append(code_counts(codes, table))
            else:  # the codes themselves, narrow: the caller counts them (see export_onnx)
                self.counts.append(codes.reshape(-1).to(torch.int16))
                self.tables[self._seen[key]] = table.tolist()
        return self._seen[key]

    def _conv(self, conv, args, y) -> None:
        x = args[0]
        if not isinstance(x, torch.Tensor):
            terms = x.terms()
            shared = {off for i, (_, off) in enumerate(terms) if any(o == off for _, o in terms[:i])}
            for train, off in terms:
                self.points.append({"kind": "conv", "record": self._convs, "output": self._index(train),
                                    "alone": off not in shared})
        self._convs += 1

    def _neuron(self, neuron, args, out) -> None:
        if isinstance(out, SpikeTrain):
            self.points.append({"kind": "neuron", "record": self._neurons, "output": self._index(out)})
            self._neurons += 1

    def __enter__(self):
        self.handles = [m.register_forward_hook(self._conv if isinstance(m, SpikeConv) else self._neuron)
                        for m in self.model.modules() if isinstance(m, (SpikeConv, SpikingNeuron))]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


class _Exportable(nn.Module):
    """The model's decoded output, plus (optionally) every neuron's codes, or the spike counts of
    :class:`_CountPoints`, as extra outputs after it."""

    def __init__(self, model: nn.Module, with_codes: bool, with_counts: bool | str = False):
        super().__init__()
        self.model = model
        self.with_codes = with_codes
        self.with_counts = with_counts
        self.points: list[dict] = []
        self.tables: dict[int, list[int]] = {}

    def forward(self, x):
        codes = []
        hooks = []
        if self.with_codes:
            hooks = [m.register_forward_hook(lambda mod, i, o: codes.append(o.codes))
                     for m in self.model.modules() if isinstance(m, SpikingNeuron)]
        form = "codes" if self.with_counts == "codes" else "counts"
        counter = _CountPoints(self.model, form) if self.with_counts else contextlib.nullcontext()
        try:
            with counter:
                y = self.model(x)
        finally:
            for h in hooks:
                h.remove()
        y = y[0] if isinstance(y, (tuple, list)) else y
        if self.with_counts:
            self.points, self.tables = counter.points, counter.tables
            return (y, *counter.counts)
        return (y, *codes) if self.with_codes else y


def count_points(path: str | Path) -> dict:
    """How to read the spike-count outputs of a graph exported ``with_counts`` (after ``output0``:
    ``counts0``, ...): ``form`` is ``counts`` (each output int64 ``[spikes, silent elements, sum of codes]``
    of one spike train) or ``codes`` (each output one train's codes, int16; ``tables[output]`` its spikes per
    code; :func:`spike_counts` turns them into the same triple). ``points`` say where each goes, in call
    order: for each conv that reads spikes, one point per train it reads (``record``: the conv's call index
    among all convs; ``output``: which output; ``alone``: whether the train's silence is observable, i.e. no
    other train is summed into its channels), and for each neuron that fires, one point (``record``: its call
    index among the neurons that fired)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if COUNTS_KEY not in meta:
        raise SpikedetError(f"{Path(path).name} has no spike-count outputs (export it with counts)")
    return json.loads(meta[COUNTS_KEY])


def code_histogram(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """How many of ``values`` (integers, all within ``[lo, hi]``; float32 ones too) equal ``lo``, ``lo + 1``, ...
    ``hi``: int64, exact. Bytes: OpenCV's ``calcHist`` counts all 256 byte values in one pass, no copy, and the
    bins of ``[lo, hi]`` are picked out. 16-bit values and integers held in float32: ``v - lo`` in int16 (float32
    in one pass after OpenCV's ``minMaxLoc`` checks the range), counted by torch's ``bincount``; numpy's
    ``bincount``, which first widens every value to int64, only where neither fits. A value outside
    ``[lo, hi]`` (NaN included) is an error, never dropped."""
    import cv2

    flat = np.ascontiguousarray(values).reshape(-1)
    if (flat.dtype.kind not in "iu" and flat.dtype != np.float32) or hi < lo:
        raise SpikedetError(f"a code histogram needs integers and lo <= hi, got {flat.dtype} in [{lo}, {hi}]")
    bins = hi - lo + 1
    if flat.dtype.itemsize == 1 and flat.size < 2**24:  # calcHist counts in float32: exact below 2**24
        kind = np.iinfo(flat.dtype)
        every = cv2.calcHist([flat.view(np.uint8)], [0], None, [256], [0, 256]).reshape(-1).astype(np.int64)
        counts = np.zeros(bins, np.int64)
        inside = np.arange(max(lo, kind.min), min(hi, kind.max) + 1)  # the codes the type can hold at all
        counts[inside - lo] = every[inside % 256]  # a byte outside them is in no picked bin: the sum tells
    elif flat.dtype == np.float32 and bins <= 2**15 and -(2**24) < lo and hi < 2**24:
        if flat.size:
            low, high = cv2.minMaxLoc(flat)[:2]
            if low < lo or high > hi:  # checked first: the int16 cast below would wrap them
                raise SpikedetError(f"codes outside their range [{lo}, {hi}]")
        try:  # minMaxLoc skips NaN, which the cast would turn into a code: numpy flags it as invalid
            with np.errstate(invalid="raise"):
                shifted = np.subtract(flat, np.float32(lo), out=np.empty(flat.size, np.int16), casting="unsafe")
        except FloatingPointError:
            raise SpikedetError(f"codes outside their range [{lo}, {hi}]: NaN") from None
        counts = torch.bincount(torch.from_numpy(shifted), minlength=bins).numpy()  # exact: integers below 2**24
    elif flat.dtype.itemsize == 2 and np.iinfo(flat.dtype).min <= lo and hi <= np.iinfo(flat.dtype).max \
            and bins <= 2**15:  # v - lo in int16: below 2**15 stays non-negative; any other value is out of range
        shifted = flat.view(np.uint16)
        if lo:  # v - lo modulo 2**16: every value of [lo, hi] lands in [0, hi - lo], any other outside it
            shifted = np.subtract(shifted, np.uint16(lo % 2**16))
        signed = torch.from_numpy(shifted.view(np.int16))
        if signed.numel() and int(signed.min()) < 0:
            raise SpikedetError(f"codes outside their range [{lo}, {hi}]")
        counts = torch.bincount(signed, minlength=bins).numpy()
    else:
        shifted = flat.astype(np.int64) - lo
        if shifted.size and shifted.min() < 0:
            raise SpikedetError(f"codes outside their range [{lo}, {hi}]")
        counts = np.bincount(shifted, minlength=bins)
    if len(counts) != bins or counts.sum() != flat.size:  # a value outside the range fell in no bin, or beyond
        raise SpikedetError(f"codes outside their range [{lo}, {hi}]")
    return counts


def histogram_counts(histogram: np.ndarray, codes: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """``[spikes, silent elements, sum of codes]`` (int64) of a train from its histogram: bin ``i`` counts the
    elements holding code ``codes[i]``, each of which sends ``spikes[i]`` spikes."""
    return np.array([histogram @ spikes, histogram[spikes == 0].sum(), histogram @ codes], dtype=np.int64)


def spike_counts(outputs: list[np.ndarray], description: dict) -> list[np.ndarray]:
    """The count outputs of one run (everything after ``output0``) as ``[spikes, silent, sum of codes]``
    per output, whichever form the graph returns them in."""
    if description["form"] == "counts":
        return [np.asarray(o).reshape(3) for o in outputs]
    counts = []
    for i, codes in enumerate(outputs):
        table = np.asarray(description["tables"][str(i)], dtype=np.int64)
        top = len(table) - 1
        counts.append(histogram_counts(code_histogram(codes, 0, top), np.arange(top + 1), table))
    return counts


def export_onnx(model: nn.Module, path: str | Path, imgsz: int = 640, opset: int = 17, with_codes: bool = False,
                with_counts: bool | str = False) -> Path:
    """Write the spike-mode (integer path) ``model`` to ONNX; output ``output0`` is ``[1, 4 + nc, anchors]``.
    ``with_counts``: after ``output0``, the spike counts of every spike train (``counts0``, ...; int64),
    described in the graph's metadata (:func:`count_points`), so energy can be computed from the graph's own
    outputs; Ultralytics reads ``output0`` and ignores the rest. ``with_counts="codes"``: instead of counts,
    each distinct train's codes as a flat int16 output, with its spikes-per-code table in the metadata, for
    the caller to count (:func:`spike_counts`): on ONNX Runtime the in-graph table lookup costs about 5 ns
    per element (more than the network itself at 320 pixels), the cast about 0.2 ns and a bincount about
    1.5 ns."""
    if with_counts not in (False, True, "codes"):
        raise SpikedetError(f"with_counts must be True, False or 'codes', got {with_counts!r}")
    if with_codes and with_counts:
        raise SpikedetError("export either the codes or their counts, not both")
    path = output_file(path, (".onnx",))
    wrapper = _Exportable(model, with_codes, with_counts).eval()
    param = next(model.parameters())
    dummy = torch.zeros(1, 3, imgsz, imgsz, dtype=param.dtype, device=param.device)
    extra = 0
    if with_codes:
        extra = sum(isinstance(m, SpikingNeuron) for m in model.modules())
    elif with_counts:
        with torch.no_grad():
            extra = len(wrapper(dummy)) - 1
    prefix = "codes" if with_codes else "counts"
    names = ["output0"] + [f"{prefix}{i}" for i in range(extra)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values baked into the graph
        torch.onnx.export(wrapper, dummy, str(path), opset_version=opset, dynamo=False, input_names=["images"], output_names=names)
    model.eval()  # the exporter restores the wrapper's training flag on every submodule
    metadata = ultralytics_metadata(model, imgsz, opset)
    if with_counts:
        description = {"form": "codes" if with_counts == "codes" else "counts", "points": wrapper.points,
                       "tables": {str(k): v for k, v in wrapper.tables.items()}}
        metadata[COUNTS_KEY] = json.dumps(description)
    write_metadata(path, metadata)
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
