"""Commands that turn weights into other weights: ``convert``, ``a2s`` and ``export``.

Each is a thin shell over its library function in :mod:`spikedet.convert.pipelines`, whose signature gives
the defaults.
"""

from __future__ import annotations

import sys

from spikedet.cli import options
from spikedet.cli.options import default_of
from spikedet.cli.parser import Invocation, Setting, UsageError, command, emit_json, say

# The pipelines (torch, Ultralytics) are imported when a command runs; their defaults are read from source.
CONVERT = "spikedet.convert.pipelines:convert_weights"
INTEGER = "spikedet.convert.pipelines:integer_weights"
VERIFY = "spikedet.convert.pipelines:verify_weights"
A2S = "spikedet.convert.pipelines:a2s_weights"
EXPORT = "spikedet.convert.pipelines:export_weights"


@command(
    "convert",
    "convert trained weights into the bit-plane inference model and check it is equivalent; with --integer, "
    "into the bit-exact integer deployment model",
    main="WEIGHTS",
    main_setting="model",
    settings={
        "model": Setting("str", None, "trained weights (.pt or .safetensors)"),
        "output": options.output(".safetensors", "<weights name>-bitplane.safetensors, -int8 with --integer"),
        "source": options.source("images checked for equivalence (default: the shipped coco8 val images); with "
                                 "--integer, the images each layer's error is measured on (default: coco8 train)"),
        "imgsz": options.imgsz(default_of(CONVERT, "imgsz"), "image size of the check (float64 is slow at 640)",
                               square=True),
        "images": Setting("int", default_of(CONVERT, "images"), "how many images the check (or, with --integer, the "
                          "error measurement) uses", minimum=1, maximum=1000),
        "device": options.device(default_of(CONVERT, "device")),
        "integer": Setting("bool", False, "write the integer deployment model (int8/int16 weights, integer neurons)"),
        "weight_bits": Setting("choice", default_of(INTEGER, "weight_bits"),
                               "--integer: int8 with int16 where a layer needs it (auto), or one width everywhere",
                               choices=("auto", "8", "16")),
        "tolerance": Setting("float", default_of(INTEGER, "tolerance"),
                             "--integer: largest relative output error of a conv with int8 weights", minimum=1e-6,
                             maximum=0.5),
    },
    examples=("spikedet convert runs/detect/train/weights/best.pt -o best-bitplane.safetensors",
              "spikedet convert runs/detect/train/weights/best.pt --integer -o best-int8.safetensors"),
)
def cmd_convert(inv: Invocation) -> int:
    s = inv.settings
    if not s["model"]:
        raise UsageError("give the trained weights: spikedet convert WEIGHTS [-o OUT]")
    if s["integer"]:
        return _integer(inv)
    from spikedet.convert.pipelines import convert_weights

    result = convert_weights(s["model"], s["output"], source=s["source"], imgsz=s["imgsz"], images=s["images"],
                             device=s["device"])
    report = result.report
    if inv.json:
        emit_json(result.as_dict())
    else:
        for precision, paths in (("float64", report.float64), ("float32", report.float32)):
            for path, v in paths.items():
                agree = f", detections agreeing {v['boxes_agreeing']}/{v['boxes_compared']}" if precision == "float32" else ""
                say(f"{precision} {path:<8}: {v['code_mismatches']} code mismatches in {v['codes_total']:,} codes "
                    f"(rate {v['mismatch_rate']:.2e}), head outputs max relative error {v['max_relative_error']:.1e}{agree}")
        say(f"equivalence check {'passed' if report.passed else 'FAILED'} on {len(report.images)} images at {report.imgsz}")
        if result.output is not None:
            say(f"saved {result.output}")
    if not report.passed:
        print("spikedet convert: error: float64 equivalence check failed; nothing was written", file=sys.stderr)
        return 1
    return 0


def _integer(inv: Invocation) -> int:
    from spikedet.convert.pipelines import integer_weights

    s = inv.settings
    result = integer_weights(s["model"], s["output"], source=s["source"], imgsz=s["imgsz"],
                             images=s["images"], weight_bits=s["weight_bits"],
                             tolerance=s["tolerance"])
    if inv.json:
        emit_json(result.as_dict())
        return 0
    report = result.report
    widths = f"int16 in {len(report.int16_layers)}: {', '.join(report.int16_layers)}" if report.int16_layers else \
        "no int16 layer"
    worst = max(report.layers, key=lambda layer: layer.error_int8)
    say(f"{len(report.layers)} convs with integer weights (int8, {widths}); {report.neurons} integer neurons")
    say(f"largest int8 output error {worst.error_int8:.2%} ({worst.conv}; tolerance {s['tolerance']:.2%}, measured "
        f"on {report.images} images at {s['imgsz']}); largest accumulator bound {max(layer.bound for layer in report.layers):,}")
    say(f"saved {result.output} (spikedet verify {result.output} checks every runtime gives the same codes)")
    return 0


@command(
    "a2s",
    "convert a trained ANN (YOLOv5 with SiLU) into a spiking detector: calibration, neurons, spike encoding",
    main="ANN_WEIGHTS",
    main_setting="model",
    settings={
        "model": Setting("str", None, "the ANN: a yolov5 checkpoint (.pt, loaded without its code) or spikedet weights"),
        "output": options.output(".safetensors", "<weights name>-a2s.safetensors"),
        "source": options.source("calibration images (default: the shipped coco8 train images)"),
        "images": Setting("int", default_of(A2S, "images"), "how many calibration images", minimum=1, maximum=100000),
        "imgsz": options.imgsz(default_of(A2S, "imgsz"), "calibration image size", square=True),
        "encoding": Setting("choice", default_of(A2S, "encoding"), "how codes travel as spikes",
                            choices=("naf", "signed", "binary")),
        "n": Setting("float", default_of(A2S, "n"), "codes per unit of activation (N)", minimum=1e-3, maximum=1e6),
        "bits": Setting("int", default_of(A2S, "bits"), "instead of n: per-layer N giving codes of this many bits",
                        minimum=2, maximum=16),
        "rest": Setting("choice", default_of(A2S, "rest"), "which code sends no spikes (signed encodings)",
                        choices=("mode", "zero")),
        "percentile": Setting("float", default_of(A2S, "percentile"),
                              "calibration percentile of each layer's range D", minimum=50, maximum=100),
        "device": options.device(default_of(A2S, "device")),
    },
    examples=(
        "spikedet a2s weights/yolov5n.pt source=path/to/coco/train2017 -o yolov5n-a2s.safetensors",
        "spikedet a2s weights/yolov5n.pt encoding=binary n=100 rest=zero -o shifted.safetensors   (a plain shifted-SiLU neuron)",
    ),
)
def cmd_a2s(inv: Invocation) -> int:
    s = inv.settings
    if not s["model"]:
        raise UsageError("give the ANN weights: spikedet a2s ANN_WEIGHTS [-o OUT]")
    from spikedet.convert.pipelines import a2s_weights

    result = a2s_weights(s["model"], s["output"], source=s["source"], images=s["images"], imgsz=s["imgsz"],
                         encoding=s["encoding"], n=s["n"], bits=s["bits"], rest=s["rest"], percentile=s["percentile"],
                         device=s["device"])
    if inv.json:
        emit_json(result.as_dict())
    else:
        cfg = result.config
        say(f"{result.neurons} SiLU activations -> A2S neurons ({cfg.encoding}, N={'per-layer' if cfg.bits else cfg.n}, "
            f"rest={cfg.rest}); L from {result.levels[0]} to {result.levels[1]}; calibrated on {result.calibration_images} images")
        say(f"saved {result.output}")
    return 0


@command(
    "export",
    "export the integer spiking model to ONNX and check it against PyTorch with onnxruntime",
    main="WEIGHTS",
    main_setting="model",
    settings={
        "model": options.weights(),
        "output": options.output(".onnx", "<weights name>.onnx"),
        "imgsz": options.imgsz(default_of(EXPORT, "imgsz"), "fixed input size (square)", square=True),
        "opset": Setting("int", default_of(EXPORT, "opset"), "ONNX opset (default: 17; 21 for an integer model)",
                         minimum=13, maximum=21),
        "source": options.source("images for the check (default: the shipped coco8 val images)"),
        "codes": Setting("bool", default_of(EXPORT, "codes"), "also output every neuron's codes (for analysis)"),
        "device": options.device(default_of(EXPORT, "device"),
                                 "device of the export and of the PyTorch side of the check"),
    },
    examples=("spikedet export weights/yolov5n-a2s.safetensors -o yolov5n-a2s.onnx imgsz=640",),
)
def cmd_export(inv: Invocation) -> int:
    s = inv.settings
    from spikedet.convert.pipelines import export_weights

    result = export_weights(s["model"], s["output"], imgsz=s["imgsz"], opset=s["opset"], source=s["source"],
                            codes=s["codes"], device=s["device"])
    check = result.check
    if inv.json:
        emit_json(result.as_dict())
    elif hasattr(check, "checks"):  # an integer model: its graph of integer ops, exact or not
        found = check.checks[0]
        say(f"saved {result.output} (integer ops; input 'images' [B, 3, H, W] in 0..1; outputs: output0, the decoded "
            "boxes and scores YOLO(\"x.onnx\") reads, then the head's accumulators and every neuron's codes: "
            "docs/integer-format.md)")
        say(f"onnxruntime vs the NumPy reference on {len(check.images)} images at {result.imgsz}: "
            f"{found.code_mismatches} of {check.codes:,} codes and {found.head_mismatches} of {check.head_values:,} "
            "head accumulators differ")
        return 0 if check.passed else 1
    else:
        say(f"saved {result.output} (input 'images' [1, 3, {result.imgsz}, {result.imgsz}], output 'output0')")
        say(f"onnxruntime vs PyTorch on {check.images} images: {check.code_mismatches:,} of {check.codes_total:,} codes differ "
            f"({check.mismatch_rate:.2%}, float32 rounding-boundary flips and their cascade); "
            f"detections agreeing {check.boxes_agreeing}/{check.boxes_compared}")
    return 0


@command(
    "verify",
    "check that PyTorch, ONNX Runtime and CUDA (where present) give an integer model's codes and head "
    "accumulators bit for bit as its NumPy reference does",
    main="MODEL",
    main_setting="model",
    settings={
        "model": options.weights("an integer model (spikedet convert WEIGHTS --integer)"),
        "source": options.source("images (default: the shipped coco8 val images)"),
        "imgsz": options.imgsz(default_of(VERIFY, "imgsz"), "image size (square)", square=True),
        "images": Setting("int", default_of(VERIFY, "images"), "how many images", minimum=1, maximum=1000),
        "runtimes": Setting("str", default_of(VERIFY, "runtimes"),
                            "all, or a comma-separated list of pytorch, onnxruntime, cuda"),
    },
    examples=("spikedet verify yolov5n-a2s-int8.safetensors", "spikedet verify best-int8.safetensors --json"),
)
def cmd_verify(inv: Invocation) -> int:
    from spikedet.convert.pipelines import verify_weights

    s = inv.settings
    result = verify_weights(s["model"], source=s["source"], imgsz=s["imgsz"], images=s["images"],
                            runtimes=s["runtimes"])
    if inv.json:
        emit_json(result.as_dict())
    else:
        say(f"reference: NumPy int64 interpreter, {result.codes:,} codes and {result.head_values:,} head accumulators "
            f"on {len(result.images)} images at {result.imgsz}")
        for c in result.checks:
            say(f"{c.runtime:<12} {c.code_mismatches} code mismatches, {c.head_mismatches} head accumulators differ "
                f"({c.seconds:.2f} s)")
        for runtime, why in result.unavailable.items():
            say(f"{runtime:<12} not run: {why}")
        say("bit-exact on every runtime run" if result.passed else "MISMATCH: not bit-exact")
    return 0 if result.passed else 1
