"""COCO accuracy of a spiking model against its bit-exact integer deployment model, measured in one run.

Converts ``--weights`` with ``spikedet convert --integer`` (each layer's int8 error measured on ``--calibration``
images, never the validation images), then validates both on an image folder whose YOLO labels sit in the
matching ``labels`` folder, with the same settings, through the same command (``spikedet val``'s library path:
both run as deployed, the float model on its float32 integer path, the integer model on its exact path).

Settings: imgsz 640, rectangular letterbox batches, conf 0.001, NMS IoU 0.6, pycocotools on ground truth built
from the YOLO labels (as ``weights/README.md``'s table).

Usage::

    python benchmarks/integer_accuracy.py VAL --calibration TRAIN [--weights weights/yolov5n-a2s.safetensors]
        [--output yolov5n-a2s-int8.safetensors] [--weight-bits auto|8|16] [--tolerance 0.02]

Prints float and integer AP / AP50 (pycocotools), the AP change in points (goal: a loss of at most 0.5), the
int16 layers and the largest per-layer int8 error; ``--output`` keeps the integer model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def validate(weights: Path, images: Path, args) -> dict:
    from spikedet.convert.bitplane import deployed
    from spikedet.engine.val import SpikeDetectionValidator
    from spikedet.io.datasets import folder_dataset
    from spikedet.io.weights import load_model

    model = deployed(load_model(weights, allow_pickle=True).eval())  # your own training run: a pickle
    with folder_dataset(images, dict(model.names)) as data, tempfile.TemporaryDirectory() as tmp:
        overrides = dict(task="detect", mode="val", data=str(data), imgsz=args.imgsz, batch=args.batch,
                         conf=args.conf, iou=args.iou, rect=True, device="cpu", workers=0, plots=False,
                         verbose=False, project=tmp, name="val", exist_ok=True)
        validator = SpikeDetectionValidator(args=overrides)
        start = time.perf_counter()
        validator(model=model)
        coco = validator.coco_stats or {}
        return {"AP": 100 * float(coco.get("AP", float("nan"))), "AP50": 100 * float(coco.get("AP50", float("nan"))),
                "seconds": time.perf_counter() - start, "images": len(validator.dataloader.dataset)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", help="validation image folder (labels in the matching .../labels/... folder)")
    parser.add_argument("--calibration", required=True, help="images each layer's int8 error is measured on")
    parser.add_argument("--weights", default=str(ROOT / "weights" / "yolov5n-a2s.safetensors"))
    parser.add_argument("--output", default=None, help="keep the integer model here")
    parser.add_argument("--calibration-images", type=int, default=4)
    parser.add_argument("--calibration-imgsz", type=int, default=320)
    parser.add_argument("--weight-bits", default="auto", choices=("auto", "8", "16"))
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--conf", type=float, default=0.001)
    parser.add_argument("--iou", type=float, default=0.6)
    args = parser.parse_args(argv)

    import spikedet  # noqa: F401  (offline switches before Ultralytics is imported)
    from spikedet.convert.pipelines import integer_weights

    images = Path(args.images).expanduser().resolve()
    if not images.is_dir():
        sys.exit(f"image folder {str(images)!r} not found")
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(args.output) if args.output else Path(tmp) / "integer.safetensors"
        converted = integer_weights(args.weights, output, source=args.calibration, images=args.calibration_images,
                                    imgsz=args.calibration_imgsz, weight_bits=args.weight_bits,
                                    tolerance=args.tolerance)
        results = {"float": validate(Path(args.weights), images, args), "integer": validate(output, images, args)}
    report = converted.report
    worst = max(report.layers, key=lambda layer: layer.error_int8)
    change = results["integer"]["AP"] - results["float"]["AP"]
    print(f"\n{Path(args.weights).name} on {images} ({results['float']['images']} images), imgsz {args.imgsz}, rect, "
          f"conf {args.conf}, NMS IoU {args.iou}; int8 errors measured on {args.calibration_images} images of "
          f"{args.calibration} at {args.calibration_imgsz}")
    for name, r in results.items():
        print(f"  {name:<8} pycocotools AP {r['AP']:.2f}  AP50 {r['AP50']:.2f}   ({r['seconds']:.0f} s)")
    print(f"  AP change {change:+.2f} points (goal: >= -0.5: {'met' if change >= -0.5 else 'NOT met'})")
    print(f"  int16 layers: {', '.join(report.int16_layers) or 'none'}; largest int8 error {worst.error_int8:.2%} "
          f"({worst.conv}); {len(report.layers)} convs, {report.neurons} neurons")
    return {"results": results, "ap_change": change, "int16_layers": report.int16_layers}


if __name__ == "__main__":
    main()
