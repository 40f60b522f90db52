"""COCO evaluation: category ids, ground truth from YOLO labels, pycocotools on hand-checkable cases."""

import numpy as np
import pytest

from spikedet.engine import coco


def _gt(boxes, size=(400, 400)):
    return {
        "images": [{"id": 1, "height": size[0], "width": size[1]}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for i, b in enumerate(boxes)
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }


def test_coco_classes_map_to_the_91_id_space():
    ids = coco.category_ids(list(coco.COCO80_NAMES))
    assert len(ids) == 80 and ids[0] == 1 and ids[11] == 13 and ids[-1] == 90  # stop sign skips id 12
    assert coco.category_ids({0: "cat", 1: "dog"}) == [1, 2]


def test_ground_truth_from_yolo_labels_is_in_pixels():
    gt = coco.gt_from_yolo_labels(
        [("images/000000000042.jpg", (100, 200), np.array([0, 5]), np.array([[0.5, 0.5, 0.5, 0.2], [0.1, 0.1, 0.2, 0.2]])),
         ("images/frame_a.jpg", (10, 10), np.zeros(0), np.zeros((0, 4)))],
        list(coco.COCO80_NAMES),
    )
    assert [img["id"] for img in gt["images"]] == [0, 1]  # a non-numeric stem among them: positions for all
    assert coco.image_ids(["a/000000000042.jpg", "b/7.png"]) == [42, 7]  # all numeric: COCO's own ids
    assert coco.image_ids(["1.jpg", "01.jpg"]) == [0, 1]  # numeric but colliding: positions
    first, second = gt["annotations"]
    assert first["bbox"] == pytest.approx([50.0, 40.0, 100.0, 20.0]) and first["area"] == pytest.approx(2000.0)
    assert first["category_id"] == 1 and second["category_id"] == 6 and first["iscrowd"] == 0
    assert second["bbox"] == pytest.approx([0.0, 0.0, 40.0, 20.0])


def test_perfect_predictions_score_one():
    boxes = [[10, 10, 100, 100], [200, 200, 120, 80]]
    preds = [{"image_id": 1, "category_id": 1, "bbox": b, "score": 0.9} for b in boxes]
    stats, summary = coco.evaluate(preds, _gt(boxes))
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)
    assert "Average Precision" in summary


def test_hand_made_known_average_precision():
    gt = _gt([[10, 10, 100, 100]])
    exact = {"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 100]}
    false_positive = {"image_id": 1, "category_id": 1, "bbox": [250, 250, 50, 50]}
    # a false positive ranked above the true one: precision 1/2 at recall 1 -> AP 0.5 at every IoU threshold
    stats, _ = coco.evaluate([{**exact, "score": 0.6}, {**false_positive, "score": 0.9}], gt)
    assert stats["AP"] == pytest.approx(0.5) and stats["AP50"] == pytest.approx(0.5)
    # ranked below it, the false positive costs nothing
    stats, _ = coco.evaluate([{**exact, "score": 0.9}, {**false_positive, "score": 0.6}], gt)
    assert stats["AP"] == pytest.approx(1.0)
    # IoU exactly 0.6 (a 100x60 box inside the 100x100 one): a hit at IoU thresholds 0.50, 0.55, 0.60 only
    stats, _ = coco.evaluate([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 60], "score": 0.9}], gt)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(0.0)
    assert stats["AP"] == pytest.approx(0.3)


def test_no_predictions_give_zeros():
    stats, summary = coco.evaluate([], _gt([[10, 10, 100, 100]]))
    assert set(stats.values()) == {0.0} and "no detections" in summary
