"""Official COCO evaluation (pycocotools ``COCOeval``) of detections.

- Ground truth is the dataset's COCO annotation JSON when the data YAML names one (``coco_json:``, e.g.
  COCO's ``instances_val2017.json``), else a JSON built from the YOLO labels: boxes in pixels,
  ``area = w * h``, ``iscrowd = 0``.
- Category ids: a dataset whose 80 class names are COCO's uses COCO's 91-id space (person = 1 ... toothbrush
  = 90, with COCO's gaps); any other dataset uses ``class index + 1``.
- Image ids: the file stems when every one is a distinct number (COCO's own ids), else the positions in the
  image list.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

# COCO's 80 detection classes in Ultralytics / YOLO order, and their ids in COCO's 91-id space.
COCO80_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
COCO91_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
    34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
    62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def category_ids(names: dict[int, str] | Sequence[str]) -> list[int]:
    """The COCO category id of each class index: COCO's 91-id space for COCO's 80 classes, else index + 1."""
    ordered = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    if tuple(n.strip().lower() for n in ordered) == COCO80_NAMES:
        return list(COCO91_IDS)
    return list(range(1, len(ordered) + 1))


def image_ids(files: Sequence[str | Path]) -> list[int]:
    """COCO image ids for a list of files: their numeric stems (COCO's own ids) when every stem is a distinct
    number, else their positions (so ids never collide in folders that mix naming schemes)."""
    stems = [Path(f).stem for f in files]
    if stems and all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(len(stems)))


def gt_from_yolo_labels(
    images: Iterable[tuple[str, tuple[int, int], np.ndarray, np.ndarray]], names: dict[int, str] | Sequence[str]
) -> dict:
    """A COCO ground-truth dict from YOLO labels.

    Args:
        images: ``(image_file, (height, width), classes [n], boxes [n, 4] as normalised cx, cy, w, h)``.
        names: the dataset's class names.
    """
    cats = category_ids(names)
    ordered = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    gt = {
        "info": {"description": "ground truth built from YOLO labels by spikedet"},
        "images": [],
        "annotations": [],
        "categories": [{"id": c, "name": n} for c, n in zip(cats, ordered)],
    }
    ann_id = 1
    images = list(images)
    for iid, (file, (h, w), classes, boxes) in zip(image_ids([im[0] for im in images]), images):
        gt["images"].append({"id": iid, "file_name": Path(file).name, "height": int(h), "width": int(w)})
        for c, (cx, cy, bw, bh) in zip(np.asarray(classes).reshape(-1), np.asarray(boxes).reshape(-1, 4)):
            pw, ph = float(bw) * w, float(bh) * h
            x, y = float(cx) * w - pw / 2, float(cy) * h - ph / 2
            gt["annotations"].append(
                {"id": ann_id, "image_id": iid, "category_id": cats[int(c)], "bbox": [x, y, pw, ph],
                 "area": pw * ph, "iscrowd": 0}
            )
            ann_id += 1
    return gt


def evaluate(
    predictions: list[dict] | str | Path, ground_truth: dict | str | Path, image_ids: Iterable[int] | None = None
) -> tuple[dict[str, float], str]:
    """Run pycocotools' ``COCOeval`` (bbox). Returns ``(stats, printed summary)``.

    ``stats`` has the twelve standard numbers (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl);
    with no predictions at all every number is 0. A number pycocotools cannot define (no ground truth in
    that area range: its -1) is None.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = ground_truth if isinstance(ground_truth, dict) else json.loads(Path(ground_truth).read_text())
    preds = predictions if isinstance(predictions, list) else json.loads(Path(predictions).read_text())
    gt = dict(gt)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ids = sorted(set(image_ids) if image_ids is not None else coco_gt.getImgIds())
        if not preds:
            return {k: 0.0 for k in STAT_NAMES}, "no detections: every COCO metric is 0"
        coco_dt = coco_gt.loadRes([dict(p) for p in preds])
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {k: (None if v < 0 else float(v)) for k, v in zip(STAT_NAMES, evaluator.stats)}
    return stats, "\n".join(line for line in buffer.getvalue().splitlines() if line.startswith(" Average"))
