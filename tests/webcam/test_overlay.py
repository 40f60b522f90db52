"""Drawing on a frame (spikedet/webcam/overlay.py): boxes, FPS and energy."""

from __future__ import annotations

import numpy as np


def test_annotate_draws_boxes_fps_and_energy():
    from spikedet.webcam import annotate

    frame = np.zeros((240, 320, 3), np.uint8)
    result = {"detections": [{"class_id": 0, "name": "person", "confidence": 0.9,
                              "box": {"x1": 100, "y1": 100, "x2": 200, "y2": 200}}],
              "energy": {"snn_mJ": 1.25, "ann_mJ": 5.0, "efficiency": 4.0}}
    annotate(frame, result, fps=12.5)
    assert frame[150, 100].any() and frame[150, 200].any()  # the box's left and right edges
    assert frame[5:40, 5:200].any()  # the FPS / energy text at the top left
    assert not frame[150, 150].any()  # inside the box is untouched
