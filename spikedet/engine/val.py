"""Validation on Ultralytics' own loop, in float32 for spiking networks, plus the official COCO evaluation (pycocotools)."""

from __future__ import annotations

import json
from pathlib import Path

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionValidator  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402

from spikedet.engine import amp, coco  # noqa: E402


class SpikeDetectionValidator(DetectionValidator):
    """Ultralytics' detection validator plus the official COCO evaluation (pycocotools) after a standalone val.

    Predictions are collected with COCO category ids (91-id space for COCO's classes) and scored against the
    data YAML's ``coco_json`` when given, else against ground truth built from the YOLO labels. The twelve
    COCO numbers land in ``self.coco_stats`` and in the returned stats as ``coco/AP`` ... ``coco/ARl``.
    """

    coco_stats: dict | None = None

    def __call__(self, trainer=None, model=None, **kwargs):
        """Ultralytics' validation; a spiking network runs in float32 even where Ultralytics would use float16
        (AMP inside training, ``half=True`` / ``quantize=16``): see :mod:`spikedet.engine.amp`."""
        if trainer is not None:
            with amp.float32_validation(trainer):
                return super().__call__(trainer=trainer, model=model, **kwargs)
        amp.keep_float32(self.args, model if model is not None else self.args.model, "mAP")
        return super().__call__(trainer=trainer, model=model, **kwargs)

    def init_metrics(self, model) -> None:
        if not self.training:
            self.args.save_json = True  # predictions.json feeds the COCO evaluation
        super().init_metrics(model)
        self.class_map = coco.category_ids(model.names)
        # spikedet runs pycocotools itself (eval_json); Ultralytics' own JSON path stays off.
        self.is_custom_json, self.build_gdict, self.gdict = False, False, None

    def print_results(self) -> None:
        super().print_results()
        if not self.training and not self.jdict:  # Ultralytics skips eval_json when nothing was detected
            self.coco_stats = {k: 0.0 for k in coco.STAT_NAMES}
            self.metrics.coco = self.coco_stats
            LOGGER.info("pycocotools COCOeval: no detections, every COCO metric is 0")

    def eval_json(self, stats: dict) -> dict:
        if self.training:
            return stats
        dataset = self.dataloader.dataset
        files = list(dataset.im_files)
        gt_file = self.data.get("coco_json")
        if gt_file:
            gt_path = Path(gt_file) if Path(gt_file).is_absolute() else Path(self.data["path"]) / gt_file
            if not gt_path.is_file():
                LOGGER.warning(f"coco_json {str(gt_path)!r} not found: COCO evaluation uses the YOLO labels")
                gt_file = None
        if gt_file:
            ground_truth = json.loads(gt_path.read_text())
            source = str(gt_path)
        else:
            ground_truth = coco.gt_from_yolo_labels(
                ((lb["im_file"], lb.get("shape") or _image_shape(lb["im_file"]), lb["cls"], lb["bboxes"]) for lb in dataset.labels),
                self.names,
            )
            (self.save_dir / "ground_truth.json").write_text(json.dumps(ground_truth))
            source = "YOLO labels"
        by_name = {Path(f).name: i for f, i in zip(files, coco.image_ids(files))}
        predictions = [{**p, "image_id": by_name.get(p["file_name"], p["image_id"])} for p in self.jdict]
        self.coco_stats, summary = coco.evaluate(predictions, ground_truth, image_ids=by_name.values())
        LOGGER.info(f"\npycocotools COCOeval (bbox) against {source}:\n{summary}")
        stats.update({f"coco/{k}": v for k, v in self.coco_stats.items()})
        self.metrics.coco = self.coco_stats  # Model.val() returns these metrics
        return stats


def _image_shape(file: str) -> tuple[int, int]:
    """(height, width) of an image as Ultralytics reads it (EXIF orientation applied), from its header."""
    from PIL import Image
    from ultralytics.data.utils import exif_size

    with Image.open(file) as im:
        w, h = exif_size(im)
    return h, w
