"""COCO accuracy of the official YOLOv5n weights rebuilt as a spikedet model (the ANN before conversion).

Loads ``weights/yolov5n.pt`` with :func:`spikedet.io.yolov5.load_yolov5_checkpoint` and validates it
with spikedet's validator (Ultralytics' detection validator plus pycocotools) on an image folder whose YOLO
labels sit in the matching ``labels`` folder (``/images/`` -> ``/labels/``, Ultralytics' rule).

Settings: imgsz 640, rectangular letterbox batches (Ultralytics' val default), conf 0.001, NMS IoU 0.6
(YOLOv5's own val.py settings), multi-label NMS, max 300 detections per image, fp32.

Usage::

    python benchmarks/yolov5_ann_map.py /work/shared/data/coco128/images/val2017 [--weights weights/yolov5n.pt]
        [--imgsz 640] [--batch 16] [--conf 0.001] [--iou 0.6] [--device cpu]

Prints Ultralytics' mAP50 / mAP50-95 and pycocotools' AP / AP50 (ground truth built from the YOLO labels:
boxes in pixels, area = w*h, iscrowd 0). Reference for coco128 val2017: 34.3 mAP50-95 / 52.9 mAP50.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", help="image folder (labels in the matching .../labels/... folder)")
    parser.add_argument("--weights", default=str(ROOT / "weights" / "yolov5n.pt"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--conf", type=float, default=0.001)
    parser.add_argument("--iou", type=float, default=0.6)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import spikedet  # noqa: F401  (offline switches before Ultralytics is imported)
    from spikedet.engine.coco import COCO80_NAMES
    from spikedet.engine.val import SpikeDetectionValidator
    from spikedet.io.datasets import folder_dataset
    from spikedet.io.yolov5 import load_yolov5_checkpoint

    images = Path(args.images).expanduser().resolve()
    if not images.is_dir():
        sys.exit(f"image folder {str(images)!r} not found")
    model = load_yolov5_checkpoint(args.weights)
    if tuple(model.names[i] for i in range(len(model.names))) != COCO80_NAMES:
        sys.exit("the checkpoint's class names are not COCO's 80 classes in YOLO order")

    with folder_dataset(images, list(COCO80_NAMES)) as data, tempfile.TemporaryDirectory() as tmp:
        overrides = dict(
            task="detect", mode="val", data=str(data), imgsz=args.imgsz, batch=args.batch, conf=args.conf,
            iou=args.iou, rect=True, device=args.device, workers=0, plots=False, verbose=False,
            project=tmp, name="val", exist_ok=True,
        )
        validator = SpikeDetectionValidator(args=overrides)
        start = time.perf_counter()
        validator(model=model)
        seconds = time.perf_counter() - start
        box = validator.metrics.box
        coco = validator.coco_stats or {}

    result = {
        "map50": 100 * float(box.map50),
        "map50_95": 100 * float(box.map),
        "coco_AP": 100 * float(coco.get("AP", float("nan"))),
        "coco_AP50": 100 * float(coco.get("AP50", float("nan"))),
    }
    print(f"\nYOLOv5n ANN (spikedet) on {images} ({len(validator.dataloader.dataset)} images), imgsz {args.imgsz}, "
          f"rect, conf {args.conf}, NMS IoU {args.iou}, {seconds:.0f} s on {args.device}")
    print(f"  Ultralytics  mAP50 {result['map50']:.1f}   mAP50-95 {result['map50_95']:.1f}")
    print(f"  pycocotools  AP50  {result['coco_AP50']:.1f}   AP       {result['coco_AP']:.1f}")
    return result


if __name__ == "__main__":
    main()
