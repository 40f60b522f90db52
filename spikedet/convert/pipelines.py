"""The conversion commands as Python functions: ``spikedet convert``, ``spikedet a2s`` and ``spikedet export``.

Each reads weights (a path or a file in ``weights/``; pickled ``.pt`` checkpoints load as Ultralytics loads
them), does its work, writes its output and returns a result whose ``as_dict()`` is the command's ``--json``
output. The defaults are the commands' defaults (the CLI reads them from these signatures).

    >>> from spikedet.convert import a2s_weights, convert_weights, export_weights
    >>> result = convert_weights("best.pt", "best-bitplane.safetensors")           # doctest: +SKIP
    >>> result.report.passed, result.output                                        # doctest: +SKIP
    (True, PosixPath('best-bitplane.safetensors'))
    >>> a2s_weights("yolov5n.pt", "yolov5n-a2s.safetensors").levels                # doctest: +SKIP
    (28, 1136)
    >>> export_weights("yolov5n-a2s.safetensors", imgsz=320).check.mismatch_rate   # doctest: +SKIP
    0.15
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from spikedet import integer_reference
from spikedet.assets import resolve_weights
from spikedet.convert import a2s
from spikedet.convert.bitplane import require_spiking_neurons, spiking
from spikedet.convert.integer import IntegerConfig, IntegerReport, to_integer
from spikedet.convert.integer_verify import RUNTIMES, IntegerVerification, verify_integer
from spikedet.convert.onnx import OnnxCheck, check_onnx, export_onnx
from spikedet.convert.verify import ConversionReport, convert_and_verify
from spikedet.engine.device import select_device
from spikedet.errors import SpikedetError, first_line
from spikedet.io.images import check_imgsz, load_batch, model_stride, sample_images
from spikedet.io.integer_format import graph_document
from spikedet.io.outputs import output_file
from spikedet.io.weights import load_model, save_model
from spikedet.nn.mode import is_converted, is_integer


def _load_spiking(path: Path) -> nn.Module:
    return require_spiking_neurons(load_model(path, allow_pickle=True), repr(str(path)))


# -- convert ---------------------------------------------------------------------------------------

@dataclass
class ConversionResult:
    """What :func:`convert_weights` did: the check's report and, when it passed, the file it wrote."""

    weights: Path
    report: ConversionReport
    output: Path | None  # None when the float64 check failed: nothing was written
    model: nn.Module  # the converted model (float32, integer path)

    def as_dict(self) -> dict:
        out = {"weights": str(self.weights), **self.report.as_dict()}
        if self.output is not None:
            out["output"] = str(self.output)
        return out


def convert_weights(weights: str | Path, output: str | Path | None = None, *, source: str | Path | None = None,
                    imgsz: int = 320, images: int = 2, device: str | None = None) -> ConversionResult:
    """Convert trained weights into the bit-plane inference model, check it is equivalent, save it.

    Args:
        weights: trained weights (``.pt`` or ``.safetensors``) of a spiking model.
        output: the ``.safetensors`` to write (default: ``./<weights name>-bitplane.safetensors``); written only
            when the float64 check passes (zero code mismatches on both paths).
        source: images the check runs on (default: the shipped coco8 val images).
        imgsz: image size of the check (float64 is slow at 640).
        images: how many images the check uses.
        device: torch device (default: the first GPU if there is one, else the CPU).
    """
    device = select_device(device)
    path = resolve_weights(weights)
    output = output_file(output, (".safetensors",), default=path.stem + "-bitplane.safetensors")
    model = _load_spiking(path)
    if is_converted(model):
        raise SpikedetError(f"{str(path)!r} is already a converted bit-plane model")
    check_imgsz(imgsz, model_stride(model))
    batch, files = load_batch(source or sample_images("val"), imgsz, images)
    converted, report = convert_and_verify(model.to(device), batch.to(device), files, imgsz)
    converted = converted.cpu()
    written = save_model(converted, output, extra={"converted_from": path.name}) if report.passed else None
    return ConversionResult(path, report, written, converted)


# -- a2s -------------------------------------------------------------------------------------------

@dataclass
class A2SResult:
    """What :func:`a2s_weights` wrote: the spiking model and how its neurons were built."""

    output: Path
    neurons: int
    levels: tuple[int, int]  # the smallest and largest L over the neurons
    config: a2s.A2SConfig
    calibration_images: int
    model: nn.Module

    def as_dict(self) -> dict:
        return {"output": str(self.output), "neurons": self.neurons, "levels": list(self.levels),
                "config": self.config.as_dict(), "calibration_images": self.calibration_images}


def a2s_weights(weights: str | Path, output: str | Path | None = None, *, source: str | Path | None = None,
                images: int = 32, imgsz: int = 640, encoding: str = "naf", n: float = 20.0, bits: int | None = None,
                rest: str = "mode", percentile: float = 99.99, device: str | None = None) -> A2SResult:
    """ANN-to-SNN conversion of a SiLU YOLO (YOLOv5): calibrate each layer's range, build the neurons, save.

    Args:
        weights: the ANN: a YOLOv5 checkpoint (``.pt``, loaded without its code) or spikedet weights.
        output: the ``.safetensors`` to write (default: ``./<weights name>-a2s.safetensors``).
        source: calibration images (default: the shipped coco8 train images).
        images: how many calibration images.
        imgsz: calibration image size.
        encoding, n, bits, rest, percentile: the neurons, see :class:`~spikedet.convert.a2s.A2SConfig`.
        device: torch device (default: the first GPU if there is one, else the CPU).
    """
    cfg = a2s.A2SConfig(encoding=encoding, n=n, bits=bits, rest=rest, percentile=percentile)
    path = resolve_weights(weights)
    output = output_file(output, (".safetensors",), default=path.stem + "-a2s.safetensors")
    device = select_device(device)
    ann = load_model(path, allow_pickle=True).float().eval().to(device)
    if not a2s.activation_sites(ann):
        raise SpikedetError(f"{str(path)!r} has no SiLU activations to convert (is it already spiking?)")
    check_imgsz(imgsz, model_stride(ann))
    ann.reparameterize()
    batch, files = load_batch(source or sample_images("train"), imgsz, images)
    batch = batch.to(device)
    stats = a2s.calibrate(ann, batch, percentile=cfg.percentile)
    snn = a2s.convert_ann(ann, stats, cfg, batch[:1]).cpu()
    extra = {"a2s": cfg.as_dict(), "ann": path.name, "calibration_images": len(files), "calibration_imgsz": imgsz}
    save_model(snn, output, extra=extra)
    levels = [m.code.levels for _, m in snn.neurons()]
    return A2SResult(output, len(levels), (min(levels), max(levels)), cfg, len(files), snn)


# -- export ----------------------------------------------------------------------------------------

@dataclass
class ExportResult:
    """The ONNX file :func:`export_weights` wrote and its check against PyTorch."""

    output: Path
    imgsz: int
    check: OnnxCheck | IntegerVerification  # an integer model: its graph against the NumPy reference

    def as_dict(self) -> dict:
        return {"output": str(self.output), "imgsz": self.imgsz, "check": self.check.as_dict()}


def export_weights(weights: str | Path | None = None, output: str | Path | None = None, *, imgsz: int = 640,
                   opset: int | None = None, source: str | Path | None = None, codes: bool = False,
                   device: str | None = "cpu") -> ExportResult:
    """Export the integer spiking model to ONNX and check it against PyTorch with onnxruntime.

    Args:
        weights: spiking weights (default: the shipped weights or ``$SPIKEDET_WEIGHTS``).
        output: the ``.onnx`` to write (default: ``./<weights name>.onnx``).
        imgsz: the graph's fixed (square) input size.
        opset: ONNX opset (default: 17; 21 for an integer model, whose graph needs 18 or later).
        source: images for the check (default: the shipped coco8 val images; 4 of them).
        codes: also output every neuron's codes (for analysis).
        device: device of the export and of the PyTorch side of the check.
    """
    device = select_device(device)
    path = resolve_weights(weights)
    output = output_file(output, (".onnx",), default=path.stem + ".onnx")
    model = _load_spiking(path)
    check_imgsz(imgsz, model_stride(model))
    if is_integer(model):
        return _export_integer(model, output, imgsz, opset or 21, source)
    opset = opset or 17
    model = spiking(model, "integer").to(device)
    batch, _ = load_batch(source or sample_images("val"), imgsz, 4)  # bad check images: nothing written
    export_onnx(model, output, imgsz, opset, with_codes=codes)
    with tempfile.TemporaryDirectory() as tmp:  # the check needs every neuron's codes as outputs
        probe = output if codes else export_onnx(model, Path(tmp) / "codes.onnx", imgsz, opset, with_codes=True)
        check = check_onnx(model, probe, batch)
    return ExportResult(output, imgsz, check)


def _export_integer(model: nn.Module, output: Path, imgsz: int, opset: int, source) -> ExportResult:
    """An integer model's graph of integer ops (dynamic input size; every neuron's codes after the head outputs,
    always: the check reads them), checked bit for bit against the NumPy reference on the CPU."""
    from spikedet.convert.integer_onnx import export_integer_onnx
    from spikedet.convert.integer_onnx_decode import append_output0
    from spikedet.convert.onnx import ultralytics_metadata, write_metadata

    batch, files = load_batch(source or sample_images("val"), imgsz, 4)
    graph, tensors = graph_document(model)
    arrays = {k: v.numpy() for k, v in tensors.items()}
    export_integer_onnx(graph, arrays, output, codes=True, opset=opset)
    append_output0(output, model.model[-1], graph, arrays, imgsz, opset)  # first, so YOLO("x.onnx") reads it
    write_metadata(output, ultralytics_metadata(model, imgsz, opset))
    check = verify_integer(model, batch, files, ("onnxruntime",), onnx_file=output)
    return ExportResult(output, imgsz, check)


# -- integer ---------------------------------------------------------------------------------------

@dataclass
class IntegerResult:
    """What :func:`integer_weights` wrote: the integer model and the report of its choices."""

    weights: Path
    output: Path
    report: IntegerReport
    model: nn.Module

    def as_dict(self) -> dict:
        return {"weights": str(self.weights), "output": str(self.output), **self.report.as_dict()}


def integer_weights(weights: str | Path | None, output: str | Path | None = None, *,
                    source: str | Path | None = None, imgsz: int = 320, images: int = 2, weight_bits: str = "auto",
                    tolerance: float = 0.01, fraction_bits: int = 16, lut_grid: int = 256) -> IntegerResult:
    """Convert spiking weights into the bit-exact integer deployment model (:mod:`spikedet.convert.integer`), save it.

    Args:
        weights: spiking weights (trained, converted or A2S; default: the shipped weights).
        output: the ``.safetensors`` to write (default: ``./<weights name>-int8.safetensors``, ``-int16`` with
            ``weight_bits=16``).
        source: the images each conv's quantization error is measured on (default: the shipped coco8 train
            images; keep validation images out of it).
        imgsz, images: their size and number.
        weight_bits, tolerance, fraction_bits, lut_grid: see :class:`~spikedet.convert.integer.IntegerConfig`.
    """
    cfg = IntegerConfig(weight_bits=str(weight_bits), tolerance=tolerance, fraction_bits=fraction_bits,
                        lut_grid=lut_grid)
    path = resolve_weights(weights)
    suffix = "-int16" if str(weight_bits) == "16" else "-int8"
    output = output_file(output, (".safetensors",), default=path.stem + suffix + ".safetensors")
    model = _load_spiking(path)
    check_imgsz(imgsz, model_stride(model))
    batch, files = load_batch(source or sample_images("train"), imgsz, images)
    integer, report = to_integer(model.cpu(), batch, cfg)
    written = save_model(integer, output, extra={"converted_from": path.name, "integer": report.as_dict()})
    return IntegerResult(path, written, report, integer)


def verify_weights(model: str | Path | None = None, *, source: str | Path | None = None, imgsz: int = 320,
                   images: int = 4, runtimes: str = "all") -> IntegerVerification:
    """Check that every available runtime computes the integer model's codes and head accumulators exactly.

    Args:
        model: an integer model (``spikedet convert WEIGHTS --integer``; default: the shipped weights).
        source: images (default: the shipped coco8 val images).
        imgsz, images: their size and number.
        runtimes: ``all`` (PyTorch, ONNX Runtime, CUDA where present) or a comma-separated list of them.
    """
    path = resolve_weights(model)
    chosen = RUNTIMES if runtimes == "all" else tuple(r.strip() for r in str(runtimes).split(",") if r.strip())
    loaded = load_model(path, allow_pickle=False)
    if not is_integer(loaded):
        raise SpikedetError(f"{str(path)!r} is not an integer model: spikedet convert {path.name} --integer "
                            "makes one")
    check_imgsz(imgsz, model_stride(loaded))
    batch, files = load_batch(source or sample_images("val"), imgsz, images)
    try:  # the reference runs the graph the file holds, as a port of the format would read it
        document = integer_reference.load(path)
    except ValueError as e:
        raise SpikedetError(first_line(e)) from None
    return verify_integer(loaded, batch, files, chosen, document=document)
