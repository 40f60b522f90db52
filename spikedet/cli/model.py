"""Commands on a detector: ``info``, ``train``, ``val``, ``predict`` and ``demo``.

``train``, ``val`` and ``predict`` hand every Ultralytics setting to Ultralytics' own loops (through
:class:`~spikedet.engine.yolo.SpikeYOLO`); input errors Ultralytics raises while checking them become one line.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from spikedet.assets import default_weights, resolve_data, resolve_source
from spikedet.cli import options
from spikedet.cli.parser import Invocation, Setting, UsageError, command, emit_json, plural, say
from spikedet.engine.results import image_record
from spikedet.errors import SpikedetError, first_line
from spikedet.io.images import check_imgsz, default_image, is_image_file, read_image
from spikedet.measure.report import CAVEAT

if TYPE_CHECKING:
    from spikedet.engine.yolo import SpikeYOLO

# torch and Ultralytics are imported when a command runs (``spikedet --help`` does not wait for them); the
# pipeline's defaults are read from its source.
MODEL_INFO = "spikedet.measure.pipelines:model_info"


def _ultralytics_args(inv: Invocation) -> dict:
    """The Ultralytics settings of an invocation (those that are not spikedet's own), checked for the values
    Ultralytics only rejects deep inside its loops (image size, batch, device)."""
    args = {k: v for k, v in inv.settings.items() if k not in inv.command.settings}
    if "imgsz" in args:
        try:  # the one image-size rule (Ultralytics would round a size up to the stride with a warning)
            check_imgsz(args["imgsz"])
        except SpikedetError as e:
            raise UsageError(str(e)) from None
    if "batch" in args:
        b = args["batch"]
        if isinstance(b, bool) or not (b == -1 or (isinstance(b, int) and b >= 1) or (isinstance(b, float) and 0 < b < 1)):
            raise UsageError(f"batch must be an integer >= 1, -1 (auto) or a fraction of memory in (0, 1), got {b!r}")
    if args.get("device") not in (None, ""):
        from spikedet.engine.device import select_device

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
            raise UsageError(first_line(e)) from None
        raise


def _check_dataset(data: str) -> str:
    """The data YAML ``data`` if Ultralytics finds its images (nothing downloaded): checked before a trainer or
    validator exists, so a missing dataset is one line saying where it looked and leaves no empty run folder."""
    from ultralytics.data.utils import check_det_dataset

    with _ultralytics_input_errors():
        check_det_dataset(data, autodownload=False)
    return data


def _metrics_dict(metrics) -> dict:
    values = getattr(metrics, "results_dict", None) if metrics is not None else None
    return {k: float(v) for k, v in values.items()} if isinstance(values, dict) else {}


def _yolo(model: str | None) -> SpikeYOLO:
    """A :class:`SpikeYOLO` for a model YAML or weights (the default weights when None)."""
    from spikedet.engine.yolo import SpikeYOLO
    from spikedet.io.weights import resolve

    return SpikeYOLO(resolve(model, allow_pickle=True))


# -- info ----------------------------------------------------------------------------------------

@command(
    "info",
    "parameters, MACs (re-parameterized and as trained) and the layer table of a model",
    main="MODEL",
    main_setting="model",
    settings={
        "model": Setting("str", options.default_of(MODEL_INFO, "model"), "model YAML (spikeyolo-s.yaml) or weights"),
        "imgsz": options.imgsz(options.default_of(MODEL_INFO, "imgsz"), "image size the MACs are counted at"),
        "device": options.device(options.default_of(MODEL_INFO, "device")),
    },
    examples=("spikedet info spikeyolo-s.yaml", "spikedet info spikeyolo-n.yaml imgsz=320 --json"),
)
def cmd_info(inv: Invocation) -> int:
    from spikedet.measure.pipelines import model_info

    summary = model_info(inv.settings["model"], inv.settings["imgsz"], inv.settings["device"])
    if inv.json:
        emit_json(summary)
        return 0
    params, (h, w) = summary["params"], summary["imgsz"]
    say(f"{summary['model']}: scale {summary['scale']}, nc {summary['nc']}, neuron {summary['neuron']}")
    say(f"{'#':>3} {'from':>12} {'n':>2} {'block':<14} {'params':>12} {'MACs':>16} {'MACs as trained':>16}  output")
    for r in summary["layers"]:
        say(f"{r['index']:>3} {str(r['source']):>12} {r['repeats']:>2} {r['block']:<14} {r['params']:>12,} "
            f"{r['macs']:>16,} {r['macs_unmerged']:>16,}  {r['output_shape']}")
    say(f"parameters {params:,} ({params / 1e6:.2f}M); MACs at {h}x{w}: {summary['macs'] / 1e9:.2f}G re-parameterized, "
        f"{summary['macs_unmerged'] / 1e9:.2f}G as trained")
    if summary["reparameterized_weights"]:
        say("note: these weights are already re-parameterized (merged convs): parameters and 'as trained' MACs are "
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
    s = inv.settings
    args = _ultralytics_args(inv)
    if not s["data"] and not args.get("resume"):
        raise UsageError("give the data YAML: spikedet train DATA (e.g. coco8.yaml)")
    model = _yolo(s["model"])
    ckpt = model.ckpt or {}
    if args.get("resume") is True and not (ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None):
        raise UsageError(f"{s['model']!r} is not an interrupted training run (it finished, or has no optimizer state): "
                         "nothing to resume; train from it without resume=True")
    if s["data"]:
        args["data"] = _check_dataset(resolve_data(s["data"]))
    with _ultralytics_input_errors():
        metrics = model.train(**args)
    trainer = model.trainer
    result = {"save_dir": str(trainer.save_dir), "best": str(trainer.best), "last": str(trainer.last),
              "metrics": _metrics_dict(metrics)}
    if inv.json:
        emit_json(result)
    else:
        for line in next_steps(trainer.best, args.get("data") or s["data"]):
            say(line)
    return 0


def next_steps(best: str | Path, data: str | None) -> list[str]:
    """What training ends with: where the best weights are and the commands that take them further."""
    best = Path(best)
    bitplane = best.with_name(f"{best.stem}-bitplane.safetensors")
    data = data or "DATA"
    return [
        f"best weights: {best}",
        "next:",
        f"  spikedet val {data} model={best}",
        f"  spikedet convert {best} -o {bitplane}",
        f"  spikedet energy {bitplane} source=data/coco8/images/val",
    ]


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
    from spikedet.io.datasets import folder_dataset

    s = inv.settings
    if not s["data"]:
        raise UsageError("give the data YAML (or an image folder with YOLO labels): spikedet val DATA model=WEIGHTS")
    args = _ultralytics_args(inv)  # cheap checks before the weights load
    model = _yolo(s["model"])
    from spikedet.convert.bitplane import deployed

    model.model = deployed(model.model)  # the network predict, energy and the service run
    if Path(s["data"]).is_dir():  # an image folder: labels from .../labels/..., class names from the model
        with folder_dataset(s["data"], dict(model.model.names)) as data, _ultralytics_input_errors():
            metrics = model.val(data=str(data), **args)
    else:
        data = _check_dataset(resolve_data(s["data"]))
        with _ultralytics_input_errors():
            metrics = model.val(data=data, **args)
    result = {"metrics": _metrics_dict(metrics), "save_dir": str(getattr(metrics, "save_dir", ""))}
    coco_stats = getattr(metrics, "coco", None)
    if coco_stats is not None:
        result["coco"] = coco_stats
    if inv.json:
        emit_json(result)
    else:
        m = result["metrics"]
        say(f"Ultralytics: mAP50 {m.get('metrics/mAP50(B)', 0):.4f}  mAP50-95 {m.get('metrics/mAP50-95(B)', 0):.4f}")
        if coco_stats is not None:
            say("pycocotools: " + "  ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in coco_stats.items()))
    return 0


@command(
    "predict",
    "detect objects in images, videos or streams; saves annotated results like 'yolo predict' (save=False: don't)",
    settings={"model": options.weights(),
              "energy": Setting("bool", False, "also estimate each image's energy (the model runs in spike mode)")},
    ultralytics_mode="predict",
    examples=("spikedet predict model=best.pt source=path/to/images", "spikedet predict source=bus.jpg --json",
              "spikedet predict source=data/coco8/images/val energy=True save=False"),
)
def cmd_predict(inv: Invocation) -> int:
    from spikedet.measure.pipelines import predict_records

    args = _ultralytics_args(inv)
    source = resolve_source(args["source"]) if args.get("source") is not None else str(default_image())
    args["source"] = source
    if isinstance(source, str) and "://" not in source and not source.isdigit() and not Path(source).exists():
        raise UsageError(f"source {source!r} not found")
    if isinstance(source, str) and Path(source).is_file() and is_image_file(source):
        read_image(source)  # an unreadable image is a one-line error before the model loads
    model = _yolo(inv.settings["model"])
    args.setdefault("save", True)  # as `yolo predict` does: annotated results in runs/detect/predict, predict-2 ...
    args.setdefault("verbose", False)  # one line per image, ours (with the energy when asked)
    records = []
    with _ultralytics_input_errors():
        for r, found, report in predict_records(model, inv.settings["energy"], **args):
            h, w = r.orig_shape[:2]
            records.append(image_record(w, h, found, path=r.path, energy=report and report.to_dict(layers=False)))
            if not inv.json:
                energy = f"; SNN {report.snn_mJ:.4f} mJ vs ANN {report.ann_mJ:.4f} mJ" if report else ""
                say(f"{r.path} ({w}x{h}): {plural(len(found), 'detection')}{energy}")
                for d in found:
                    say(f"  {d.describe()}")
    if inv.json:  # (where results were saved, Ultralytics' predictor says on stderr)
        emit_json(records)
    return 0


# -- demo ----------------------------------------------------------------------------------------

@command(
    "demo",
    "detect objects in a sample photo with the default weights and print detections and energy",
    settings={
        "source": options.source("image (default: Ultralytics' bus.jpg)"),
        "model": options.weights(),
        "device": options.device(),
        "energy_model": options.energy_model(),
    },
    examples=("spikedet demo", "spikedet demo source=photo.jpg --json"),
)
def cmd_demo(inv: Invocation) -> int:
    from spikedet.detector import Detector
    from spikedet.engine.device import select_device

    s = inv.settings
    source = resolve_source(s["source"]) if s["source"] else str(default_image())
    try:
        image = read_image(source)
    except SpikedetError:
        raise UsageError(f"source {source!r} not found or not an image") from None
    weights = s["model"] or default_weights()
    if weights is None:
        say("NOTE: no default weights are installed, so this demo runs spikeyolo-t built from its YAML with")
        say("random weights: the pipeline runs end to end, but its detections are meaningless.")
        weights = "spikeyolo-t.yaml"
    device = select_device(s["device"])
    detector = Detector(weights, device=str(device), allow_pickle=str(weights).endswith(".pt"))
    result = detector.detect(image)
    info = detector.info()
    if inv.json:
        record = result.to_dict()  # the service's record, with the image's path as predict and energy give it
        emit_json({**record, "image": {"path": source, **record["image"]}})
        return 0
    neuron = info["neuron"]
    if neuron["layers"]:
        say(f"model: {info['weights']} ({info['architecture']}, {info['parameters']:,} parameters, "
            f"{neuron['layers']} spiking layers: {', '.join(neuron['types'])}, T={neuron['T']}, L={neuron['L']}, N={neuron['N']})")
    else:
        say(f"model: {info['weights']} ({info['architecture']}, {info['parameters']:,} parameters): an ANN with no spiking "
            "neurons, so its energy is the ANN's (convert it with spikedet a2s)")
    say(f"image: {source} ({result.width}x{result.height})")
    say(f"{plural(len(result.detections), 'detection')}:")
    for d in result.detections:
        say(f"  {d.describe()}")
    lines = result.energy.describe(s["energy_model"])
    say(f"energy: {lines[0]}")
    for line in lines[1:]:
        say(f"      {line}")
    say(f"        {CAVEAT}")
    say(f"time: {result.timing_ms['total']:.0f} ms on {device}")
    return 0
