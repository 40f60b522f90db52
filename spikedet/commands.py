"""The ``spikedet`` commands. Each is a function registered with :func:`spikedet.cli.command`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from spikedet.assets import resolve_data, resolve_weights
from spikedet.errors import SpikedetError, first_line
from spikedet.cli import Invocation, Setting, UsageError, command, emit_json

DEVICE_HELP = "cpu, 0, cuda:0 ... (default: the first GPU if there is one, else cpu)"


def _out(text: str = "") -> None:
    print(text)


def _spiking_module(weights: Path):
    """The model in ``weights``, refused when it has no spiking neuron (an ANN: nothing to convert or export)."""
    from spikedet.neurons import SpikingNeuron
    from spikedet.weights import load_module

    model = load_module(weights)
    if not any(isinstance(m, SpikingNeuron) for m in model.modules()):
        raise UsageError(f"{str(weights)!r} has no spiking neurons (an ANN): make it spiking first, "
                         "e.g. spikedet a2s for a SiLU YOLO")
    return model


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _ultralytics_args(inv: Invocation, *ours: str) -> dict:
    """The Ultralytics settings of an invocation (those that are not spikedet's own), checked for the values
    Ultralytics only rejects deep inside its loops (image size, batch, device)."""
    args = {k: v for k, v in inv.settings.items() if k not in inv.command.settings and k not in ours}
    if "imgsz" in args:
        size = args["imgsz"]
        sizes = size if isinstance(size, (list, tuple)) else [size]
        if not (1 <= len(sizes) <= 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 32 for v in sizes)):
            raise UsageError(f"imgsz must be an integer >= 32 or [height, width], got {size!r}")
    if "batch" in args:
        b = args["batch"]
        if isinstance(b, bool) or not (b == -1 or (isinstance(b, int) and b >= 1) or (isinstance(b, float) and 0 < b < 1)):
            raise UsageError(f"batch must be an integer >= 1, -1 (auto) or a fraction of memory in (0, 1), got {b!r}")
    if args.get("device") not in (None, ""):
        from spikedet.workflow import select_device

        select_device(args["device"])
    return args


@contextlib.contextmanager
def _ultralytics_input_errors():
    """Report input errors that Ultralytics raises while checking data, settings and devices as one line.

    Only exceptions raised by Ultralytics' own checking code count as input errors; anything else is a bug
    and keeps its traceback.
    """
    checking = ("ultralytics/data/utils.py", "ultralytics/cfg/__init__.py", "ultralytics/utils/checks.py",
                "ultralytics/data/build.py", "ultralytics/data/loaders.py", "ultralytics/engine/trainer.py",
                "ultralytics/utils/torch_utils.py")
    try:
        yield
    except (RuntimeError, SyntaxError, ValueError, FileNotFoundError, TypeError, KeyError) as e:
        tb = e.__traceback__
        files = []
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename.replace("\\", "/"))
            tb = tb.tb_next
        origin = files[-1] if files else ""
        if isinstance(e, SpikedetError) or any(origin.endswith(c) for c in checking):
            raise UsageError(" ".join(first_line(e).replace("\u274c", "").split())) from None
        raise


# -- info ----------------------------------------------------------------------------------------

@command(
    "info",
    "parameters, MACs (re-parameterized and as trained) and the layer table of a model",
    main="MODEL",
    main_setting="model",
    settings={
        "model": Setting("str", "spikeyolo-n.yaml", "model YAML (spikeyolo-s.yaml) or weights"),
        "imgsz": Setting("size", 640, "image size the MACs are counted at", minimum=32, maximum=8192),
        "device": Setting("str", None, DEVICE_HELP),
    },
    examples=("spikedet info spikeyolo-s.yaml", "spikedet info spikeyolo-n.yaml imgsz=320 --json"),
)
def cmd_info(inv: Invocation) -> int:
    from spikedet.opcount import layer_table
    from spikedet.weights import load_module

    from spikedet.workflow import select_device

    model = load_module(inv.settings["model"], device=select_device(inv.settings["device"]))
    imgsz = inv.settings["imgsz"]
    size = tuple(imgsz) if isinstance(imgsz, list) else (imgsz, imgsz)
    if size[0] % 32 or size[1] % 32:
        raise UsageError(f"imgsz must be a multiple of the model stride 32, got {imgsz}")
    rows = layer_table(model, size)
    params = sum(p.numel() for p in model.parameters())
    macs, macs_unmerged = sum(r.macs for r in rows), sum(r.macs_unmerged for r in rows)
    from spikedet.detector import describe_model

    neuron = describe_model(model)["neuron"]
    merged_already = bool(getattr(model, "is_fused", lambda: False)()) and any(
        getattr(m, "trained_macs_per_pixel", None) for m in model.modules())
    summary = {
        "model": str(inv.settings["model"]),
        "scale": model.yaml.get("scale"),
        "nc": model.yaml["nc"],
        "imgsz": list(size),
        "params": params,
        "macs": macs,
        "macs_unmerged": macs_unmerged,
        "neuron": neuron,
        "reparameterized_weights": merged_already,
        "layers": [r.as_dict() for r in rows],
    }
    if inv.json:
        emit_json(summary)
        return 0
    _out(f"{summary['model']}: scale {summary['scale']}, nc {summary['nc']}, neuron {neuron}")
    _out(f"{'#':>3} {'from':>12} {'n':>2} {'block':<14} {'params':>12} {'MACs':>16} {'MACs as trained':>16}  output")
    for r in rows:
        _out(f"{r.index:>3} {str(r.source):>12} {r.repeats:>2} {r.block:<14} {r.params:>12,} {r.macs:>16,} {r.macs_unmerged:>16,}  {r.output_shape}")
    _out(f"parameters {params:,} ({params / 1e6:.2f}M); MACs at {size[0]}x{size[1]}: {macs / 1e9:.2f}G re-parameterized, "
         f"{macs_unmerged / 1e9:.2f}G as trained")
    if merged_already:
        _out("note: these weights are already re-parameterized (merged convs): parameters and 'as trained' MACs are "
             "those of the merged network; run info on the trained checkpoint or YAML for the training-time figures")
    return 0


# -- train / val / predict -----------------------------------------------------------------------

@command(
    "train",
    "train a detector with Ultralytics' trainer (DATA: a data YAML path, a file in data/, or an Ultralytics dataset)",
    main="DATA",
    main_setting="data",
    settings={"data": Setting("str", None, "data YAML"), "model": Setting("str", "spikeyolo-n.yaml", "model YAML or .pt checkpoint")},
    ultralytics_mode="train",
    examples=(
        "spikedet train coco8.yaml model=spikeyolo-t.yaml epochs=3 imgsz=320",
        "spikedet train coco.yaml model=spikeyolo-s.yaml epochs=300 batch=40 device=0,1,2,3",
        "spikedet train coco8.yaml model=runs/detect/train/weights/last.pt resume=True",
    ),
)
def cmd_train(inv: Invocation) -> int:
    from spikedet.model import SpikeYOLO

    s = inv.settings
    args = _ultralytics_args(inv)
    model_name = s["model"]
    if not s["data"] and not args.get("resume"):
        raise UsageError("give the data YAML: spikedet train DATA (e.g. coco8.yaml)")
    if model_name.endswith((".yaml", ".yml")):
        from spikedet.builder import load_model_cfg

        load_model_cfg(model_name)  # fail fast with a clear message
        model = SpikeYOLO(model_name)
    else:
        from spikedet.weights import load_detector

        model = load_detector(model_name)
        ckpt = model.ckpt or {}
        if args.get("resume") is True and not (ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None):
            raise UsageError(f"{model_name!r} is not an interrupted training run (it finished, or has no optimizer state): "
                             "nothing to resume; train from it without resume=True")
    if s["data"]:
        args["data"] = resolve_data(s["data"])
    with _ultralytics_input_errors():
        metrics = model.train(**args)
    trainer = model.trainer
    result = {
        "save_dir": str(trainer.save_dir),
        "best": str(trainer.best),
        "last": str(trainer.last),
        "metrics": _metrics_dict(metrics),
    }
    if inv.json:
        emit_json(result)
    else:
        _out(f"weights: {result['last']}")
    return 0


@command(
    "val",
    "validate weights on a dataset: Ultralytics mAP and the official COCO evaluation",
    main="DATA",
    main_setting="data",
    settings={"data": Setting("str", None, "data YAML"), "model": Setting("str", None, "weights (.pt or .safetensors)")},
    ultralytics_mode="val",
    examples=(
        "spikedet val coco8.yaml model=runs/detect/train/weights/best.pt",
        "spikedet val path/to/images/val2017 model=weights/yolov5n.pt iou=0.6   (labels in path/to/labels/val2017)",
    ),
)
def cmd_val(inv: Invocation) -> int:
    from spikedet.weights import load_detector

    s = inv.settings
    if not s["data"]:
        raise UsageError("give the data YAML (or an image folder with YOLO labels): spikedet val DATA model=WEIGHTS")
    model = load_detector(s["model"])
    args = _ultralytics_args(inv)
    if Path(s["data"]).is_dir():  # an image folder: labels from .../labels/..., class names from the model
        from spikedet.workflow import folder_dataset

        with folder_dataset(s["data"], dict(model.model.names)) as data, _ultralytics_input_errors():
            metrics = model.val(data=str(data), **args)
    else:
        with _ultralytics_input_errors():
            metrics = model.val(data=resolve_data(s["data"]), **args)
    result = {"metrics": _metrics_dict(metrics), "save_dir": str(getattr(metrics, "save_dir", ""))}
    coco_stats = getattr(metrics, "coco", None)
    if coco_stats is not None:
        result["coco"] = coco_stats
    if inv.json:
        emit_json(result)
    else:
        m = result["metrics"]
        _out(f"Ultralytics: mAP50 {m.get('metrics/mAP50(B)', 0):.4f}  mAP50-95 {m.get('metrics/mAP50-95(B)', 0):.4f}")
        if coco_stats is not None:
            _out("pycocotools: " + "  ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in coco_stats.items()))
    return 0


@command(
    "predict",
    "detect objects in images, videos or streams",
    settings={"model": Setting("str", None, "weights (default: the shipped weights or $SPIKEDET_WEIGHTS)")},
    ultralytics_mode="predict",
    examples=("spikedet predict model=best.pt source=path/to/images", "spikedet predict source=bus.jpg --json"),
)
def cmd_predict(inv: Invocation) -> int:
    from spikedet.weights import load_detector

    s = inv.settings
    args = _ultralytics_args(inv)
    if args.get("source") is None:
        args["source"] = str(default_image())
    source = args["source"]
    if isinstance(source, str) and "://" not in source and not source.isdigit() and not Path(source).exists():
        raise UsageError(f"source {source!r} not found")
    if isinstance(source, str) and Path(source).is_file() and Path(source).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
        import cv2

        if cv2.imread(source) is None:
            raise UsageError(f"cannot read image {source!r}")
    model = load_detector(s["model"])
    args.setdefault("save", False)
    images = []
    with _ultralytics_input_errors():
        for r in model.predict(**args, stream=True):
            detections = [
                {"class_id": int(c), "name": r.names[int(c)], "confidence": round(float(p), 4),
                 "box": {k: round(float(v), 1) for k, v in zip(("x1", "y1", "x2", "y2"), xyxy)}}
                for xyxy, p, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(), r.boxes.cls.tolist())
            ]
            images.append({"image": r.path, "width": r.orig_shape[1], "height": r.orig_shape[0], "detections": detections})
            if not inv.json:
                _out(f"{r.path}: {_count(len(detections), 'detection')}")
                for d in detections:
                    b = d["box"]
                    _out(f"  {d['name']:<16} {d['confidence']:.2f}  [{b['x1']:.0f}, {b['y1']:.0f}, {b['x2']:.0f}, {b['y2']:.0f}]")
    if inv.json:
        emit_json(images)
    return 0


def default_image() -> Path:
    """Ultralytics' bus.jpg (shipped in its package assets)."""
    from spikedet.offline import import_ultralytics

    utils = import_ultralytics()
    return Path(utils.ASSETS) / "bus.jpg"


def _metrics_dict(metrics) -> dict:
    if metrics is None:
        return {}
    values = getattr(metrics, "results_dict", None)
    if isinstance(values, dict):
        return {k: float(v) for k, v in values.items()}
    return {}



# -- demo ----------------------------------------------------------------------------------------

@command(
    "demo",
    "detect objects in a sample photo with the default weights and print detections and energy",
    settings={
        "source": Setting("str", None, "image (default: Ultralytics' bus.jpg)"),
        "model": Setting("str", None, "weights (default: the shipped weights or $SPIKEDET_WEIGHTS)"),
        "device": Setting("str", None, DEVICE_HELP),
    },
    examples=("spikedet demo", "spikedet demo source=photo.jpg --json"),
)
def cmd_demo(inv: Invocation) -> int:
    import cv2

    from spikedet.assets import default_weights
    from spikedet.detector import Detector
    from spikedet.energy import CAVEAT

    s = inv.settings
    source = s["source"] or str(default_image())
    image = cv2.imread(source) if Path(source).is_file() else None
    if image is None:
        raise UsageError(f"source {source!r} not found or not an image")
    weights = s["model"] or default_weights()
    if weights is None:
        _out("NOTE: no default weights are installed, so this demo runs spikeyolo-t built from its YAML with")
        _out("random weights: the pipeline runs end to end, but its detections are meaningless.")
        weights = "spikeyolo-t.yaml"
    from spikedet.workflow import select_device

    device = select_device(s["device"])
    detector = Detector(weights, device=str(device), allow_pickle=str(weights).endswith(".pt"))
    result = detector.detect(image)
    info = detector.info()
    if inv.json:
        emit_json(result.to_dict())
        return 0
    neuron = info["neuron"]
    if neuron["layers"]:
        _out(f"model: {info['weights']} ({info['architecture']}, {info['parameters']:,} parameters, "
             f"{neuron['layers']} spiking layers: {', '.join(neuron['types'])}, T={neuron['T']}, L={neuron['L']}, N={neuron['N']})")
    else:
        _out(f"model: {info['weights']} ({info['architecture']}, {info['parameters']:,} parameters): an ANN with no spiking "
             "neurons, so its energy is the ANN's (convert it with spikedet a2s)")
    _out(f"image: {source} ({result.width}x{result.height})")
    _out(f"{_count(len(result.detections), 'detection')}:")
    for d in result.detections:
        x1, y1, x2, y2 = d.box
        _out(f"  {d.name:<16} {d.confidence:.2f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]")
    e = result.energy
    _out(f"energy: SNN {e.snn_mJ:.3f} mJ vs ANN {e.ann_mJ:.3f} mJ per image -> {e.efficiency:.2f}x more efficient "
         f"({e.macs / 1e9:.2f} GMACs; {e.acs / 1e9:.2f} GACs from {e.spikes / 1e6:.2f}M spikes)")
    _out(f"        {CAVEAT}")
    _out(f"time: {result.timing_ms['total']:.0f} ms on {device}")
    return 0


# -- convert / energy / analyze / export ----------------------------------------------------------

@command(
    "convert",
    "convert trained weights into the bit-plane inference model and check it is equivalent",
    main="WEIGHTS",
    main_setting="model",
    settings={
        "model": Setting("str", None, "trained weights (.pt or .safetensors)"),
        "output": Setting("str", None, "output .safetensors (default: ./<weights name>-bitplane.safetensors)"),
        "source": Setting("str", None, "images checked for equivalence (default: the shipped coco8 val images)"),
        "imgsz": Setting("int", 320, "image size of the check (float64 is slow at 640)", minimum=32, maximum=4096, multiple=32),
        "images": Setting("int", 2, "how many images the check uses", minimum=1, maximum=1000),
        "device": Setting("str", None, DEVICE_HELP),
    },
    examples=("spikedet convert runs/detect/train/weights/best.pt -o best-bitplane.safetensors",),
)
def cmd_convert(inv: Invocation) -> int:
    from spikedet.weights import save_safetensors
    from spikedet.workflow import convert_and_verify, default_sample_dir, load_batch, select_device

    s = inv.settings
    if not s["model"]:
        raise UsageError("give the trained weights: spikedet convert WEIGHTS [-o OUT]")
    device = select_device(s["device"])
    weights = resolve_weights(s["model"])
    output = Path(s["output"] or weights.stem + "-bitplane.safetensors")  # default: the current folder
    if output.suffix.lower() != ".safetensors":
        raise UsageError(f"output must end in .safetensors, got {str(output)!r}")
    model = _spiking_module(weights)
    if getattr(model, "converted", False):
        raise UsageError(f"{str(weights)!r} is already a converted bit-plane model")
    images, files = load_batch(s["source"] or default_sample_dir(), s["imgsz"], s["images"])
    converted, report = convert_and_verify(model.to(device), images.to(device), files, s["imgsz"])
    converted = converted.cpu()
    result = {"weights": str(weights), **report.as_dict()}
    if report.passed:
        save_safetensors(converted, output, extra={"converted_from": weights.name})
        result["output"] = str(output)
    if inv.json:
        emit_json(result)
    else:
        for precision, paths in (("float64", report.float64), ("float32", report.float32)):
            for path, v in paths.items():
                agree = f", detections agreeing {v['boxes_agreeing']}/{v['boxes_compared']}" if precision == "float32" else ""
                _out(f"{precision} {path:<8}: {v['code_mismatches']} code mismatches in {v['codes_total']:,} codes "
                     f"(rate {v['mismatch_rate']:.2e}), head outputs max relative error {v['max_relative_error']:.1e}{agree}")
        _out(f"equivalence check {'passed' if report.passed else 'FAILED'} on {len(files)} images at {s['imgsz']}")
        if report.passed:
            _out(f"saved {output}")
    if not report.passed:
        print("spikedet convert: error: float64 equivalence check failed; nothing was written", file=sys.stderr)
        return 1
    return 0


def _energy_settings() -> dict:
    return {
        "model": Setting("str", None, "weights (default: the shipped weights or $SPIKEDET_WEIGHTS)"),
        "source": Setting("str", None, "image, folder or glob (default: Ultralytics' bus.jpg)"),
        "imgsz": Setting("int", 640, "inference size", minimum=32, maximum=4096),
        "device": Setting("str", None, DEVICE_HELP),
        "conf": Setting("float", 0.25, "detection confidence threshold", minimum=0, maximum=1),
        "counting": Setting("choice", "auto", "spike counting: neuron's own, bit planes, or unary", choices=("auto", "binary", "unary")),
        "path": Setting("choice", "integer", "execution path (same spikes either way)", choices=("integer", "bitplane")),
        "e_mac": Setting("float", 4.6, "energy of a MAC in pJ", minimum=0),
        "e_ac": Setting("float", 0.9, "energy of an AC in pJ", minimum=0),
    }


def _spiking_detector(s: dict):
    from spikedet.model import SpikeYOLO
    from spikedet.weights import load_module
    from spikedet.workflow import ensure_spiking

    module = ensure_spiking(load_module(resolve_weights(s["model"])), s["path"])
    return module, SpikeYOLO(module)


def _sources(s: dict) -> list[str]:
    from spikedet.workflow import image_files

    return [str(p) for p in image_files(s["source"] or default_image())]


@command(
    "energy",
    "per-image, per-layer energy estimate (ACs/MACs from the actual spikes) with detections",
    main="WEIGHTS",
    main_setting="model",
    settings={**_energy_settings(), "layers": Setting("bool", False, "print the per-layer table")},
    examples=("spikedet energy best-bitplane.safetensors source=data/coco8/images/val --json",),
)
def cmd_energy(inv: Invocation) -> int:
    from spikedet import energy

    s = inv.settings
    files = _sources(s)
    constants = energy.EnergyConstants(e_mac_pj=s["e_mac"], e_ac_pj=s["e_ac"])
    module, detector = _spiking_detector(s)
    reports = []
    from spikedet.workflow import predict_each

    with energy.measure(module, s["counting"]) as recorder:
        for file, r in predict_each(detector, files, imgsz=s["imgsz"], conf=s["conf"], device=s["device"]):
            report = recorder.next_report(constants, file)
            entry = report.to_dict(layers=True)
            entry["detections"] = len(r.boxes)
            reports.append(entry)
            if not inv.json:
                _out(f"{file}: {_count(len(r.boxes), 'detection')}; {report.summary()}")
                if s["layers"]:
                    _out(report.table())
    if inv.json:
        emit_json(reports)
    else:
        snn, ann = sum(r["snn_mJ"] for r in reports), sum(r["ann_mJ"] for r in reports)
        n = len(reports)
        ratio = f"SNN/ANN {snn / ann:.3f}" if ann > 0 else "SNN/ANN n/a (ANN energy 0)"
        gain = f" ({ann / snn:.2f}x)" if snn > 0 and ann > 0 else ""
        _out(f"{n} images: mean SNN {snn / n:.4f} mJ, mean ANN {ann / n:.4f} mJ per image; {ratio}{gain}")
        _out(energy.CAVEAT)
    return 0


@command(
    "analyze",
    "activation analysis: per-layer code histograms, energy per layer (PNG) and firing rates (CSV, JSON)",
    main="WEIGHTS",
    main_setting="model",
    settings={**_energy_settings(), "output": Setting("str", "analysis", "output folder")},
    examples=("spikedet analyze best.pt source=data/coco8/images/val -o analysis",),
)
def cmd_analyze(inv: Invocation) -> int:
    from spikedet.analysis import analyze

    s = inv.settings
    files = _sources(s)
    module, detector = _spiking_detector(s)
    written = analyze(module, detector, files, Path(s["output"]), s)
    if inv.json:
        emit_json({k: str(v) for k, v in written.items()})
    else:
        for kind, path in written.items():
            _out(f"{kind:<18} {path}")
    return 0


# The service's commands (serve, webcam) live beside the service code.
from spikedet import service_commands  # noqa: E402,F401


@command(
    "a2s",
    "convert a trained ANN (YOLOv5 with SiLU) into a spiking detector: calibration, neurons, spike encoding",
    main="ANN_WEIGHTS",
    main_setting="model",
    settings={
        "model": Setting("str", None, "the ANN: a yolov5 checkpoint (.pt, loaded without its code) or spikedet weights"),
        "output": Setting("str", None, "output .safetensors (default: ./<weights name>-a2s.safetensors)"),
        "source": Setting("str", None, "calibration images (default: the shipped coco8 train images)"),
        "images": Setting("int", 32, "how many calibration images", minimum=1, maximum=100000),
        "imgsz": Setting("int", 640, "calibration image size", minimum=32, maximum=4096, multiple=32),
        "encoding": Setting("choice", "naf", "how codes travel as spikes", choices=("naf", "signed", "binary")),
        "n": Setting("float", 20.0, "codes per unit of activation (N)", minimum=1e-3, maximum=1e6),
        "bits": Setting("int", None, "instead of n: per-layer N giving codes of this many bits", minimum=2, maximum=16),
        "rest": Setting("choice", "mode", "which code sends no spikes (signed encodings)", choices=("mode", "zero")),
        "percentile": Setting("float", 99.99, "calibration percentile of each layer's range D", minimum=50, maximum=100),
        "device": Setting("str", None, DEVICE_HELP),
    },
    examples=(
        "spikedet a2s weights/yolov5n.pt source=path/to/coco/train2017 -o yolov5n-a2s.safetensors",
        "spikedet a2s weights/yolov5n.pt encoding=binary n=100 rest=zero -o shifted.safetensors   (a plain shifted-SiLU neuron)",
    ),
)
def cmd_a2s(inv: Invocation) -> int:
    from spikedet import a2s
    from spikedet.weights import load_module, save_safetensors
    from spikedet.workflow import load_batch

    s = inv.settings
    if not s["model"]:
        raise UsageError("give the ANN weights: spikedet a2s ANN_WEIGHTS [-o OUT]")
    cfg = a2s.A2SConfig(encoding=s["encoding"], n=s["n"], bits=s["bits"], rest=s["rest"], percentile=s["percentile"])
    weights = resolve_weights(s["model"])
    output = Path(s["output"] or weights.stem + "-a2s.safetensors")  # default: the current folder
    if output.suffix.lower() != ".safetensors":
        raise UsageError(f"output must end in .safetensors, got {str(output)!r}")
    from spikedet.workflow import select_device

    device = select_device(s["device"])
    ann = load_module(weights).float().eval().to(device)
    if not a2s.activation_sites(ann):
        raise UsageError(f"{str(weights)!r} has no SiLU activations to convert (is it already spiking?)")
    ann.reparameterize()
    from spikedet.workflow import default_sample_dir

    source = s["source"] or default_sample_dir().parent / "train"
    images, files = load_batch(source, s["imgsz"], s["images"])
    images = images.to(device)
    stats = a2s.calibrate(ann, images, percentile=cfg.percentile)
    snn = a2s.convert_ann(ann, stats, cfg, images[:1]).cpu()
    extra = {"a2s": cfg.as_dict(), "ann": weights.name, "calibration_images": len(files), "calibration_imgsz": s["imgsz"]}
    save_safetensors(snn, output, extra=extra)
    codes = [m.code for _, m in snn.neurons()]
    result = {"output": str(output), "neurons": len(codes), "levels": [min(c.levels for c in codes), max(c.levels for c in codes)],
              "config": cfg.as_dict(), "calibration_images": len(files)}
    if inv.json:
        emit_json(result)
    else:
        _out(f"{len(codes)} SiLU activations -> A2S neurons ({cfg.encoding}, N={'per-layer' if cfg.bits else cfg.n}, "
             f"rest={cfg.rest}); L from {result['levels'][0]} to {result['levels'][1]}; calibrated on {len(files)} images")
        _out(f"saved {output}")
    return 0


@command(
    "export",
    "export the integer spiking model to ONNX and check it against PyTorch with onnxruntime",
    main="WEIGHTS",
    main_setting="model",
    settings={
        "model": Setting("str", None, "weights (default: the shipped weights or $SPIKEDET_WEIGHTS)"),
        "output": Setting("str", None, "output .onnx (default: ./<weights name>.onnx)"),
        "imgsz": Setting("int", 640, "fixed input size (square)", minimum=32, maximum=4096, multiple=32),
        "opset": Setting("int", 17, "ONNX opset", minimum=13, maximum=21),
        "source": Setting("str", None, "images for the check (default: the shipped coco8 val images)"),
        "codes": Setting("bool", False, "also output every neuron's codes (for analysis)"),
        "device": Setting("str", "cpu", "device of the export and of the PyTorch side of the check"),
    },
    examples=("spikedet export weights/yolov5n-a2s.safetensors -o yolov5n-a2s.onnx imgsz=640",),
)
def cmd_export(inv: Invocation) -> int:
    import tempfile

    from spikedet.export import check_onnx, export_onnx
    from spikedet.workflow import default_sample_dir, ensure_spiking, load_batch, select_device

    s = inv.settings
    device = select_device(s["device"])
    weights = resolve_weights(s["model"])
    output = Path(s["output"] or weights.stem + ".onnx")  # default: the current folder
    if output.suffix.lower() != ".onnx":
        raise UsageError(f"output must end in .onnx, got {str(output)!r}")
    model = ensure_spiking(_spiking_module(weights), "integer").to(device)
    export_onnx(model, output, s["imgsz"], s["opset"], with_codes=s["codes"])
    images, files = load_batch(s["source"] or default_sample_dir(), s["imgsz"], 4)
    with tempfile.TemporaryDirectory() as tmp:  # the check needs every neuron's codes as outputs
        probe = output if s["codes"] else export_onnx(model, Path(tmp) / "codes.onnx", s["imgsz"], s["opset"], with_codes=True)
        check = check_onnx(model, probe, images)
    result = {"output": str(output), "imgsz": s["imgsz"], "check": check.as_dict()}
    if inv.json:
        emit_json(result)
    else:
        _out(f"saved {output} (input 'images' [1, 3, {s['imgsz']}, {s['imgsz']}], output 'output0')")
        _out(f"onnxruntime vs PyTorch on {check.images} images: {check.code_mismatches:,} of {check.codes_total:,} codes differ "
             f"({check.mismatch_rate:.2%}, float32 rounding-boundary flips and their cascade); "
             f"detections agreeing {check.boxes_agreeing}/{check.boxes_compared}")
    return 0
