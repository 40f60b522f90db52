"""Drawing on a frame (spikedet/webcam/overlay.py): boxes, FPS and energy."""

from __future__ import annotations

import numpy as np


def test_annotate_draws_boxes_as_predict_does_and_keeps_the_stats_below_the_picture():
    from ultralytics.utils.plotting import colors

    from spikedet.webcam import annotate

    frame = np.zeros((240, 320, 3), np.uint8)
    result = {"detections": [{"class_id": 0, "name": "person", "confidence": 0.9,
                              "box": {"x1": 10, "y1": 10, "x2": 200, "y2": 200}}],
              "energy": {"snn_mJ": 1.25, "ann_mJ": 5.0, "efficiency": 4.0}}
    out = annotate(frame, result, fps=12.5)
    assert out.shape[1] == 320 and out.shape[0] > 240  # a strip of stats below, not text over the boxes
    assert tuple(int(v) for v in out[100, 10]) == colors(0, True)  # the box edge in predict's colour for class 0
    assert not out[100:190, 30:190].any()  # inside the box is untouched
    assert out[240:].std() > 10  # text on the strip
    plain = annotate(np.zeros((240, 320, 3), np.uint8), {"detections": []})
    assert plain.shape == (240, 320, 3)  # no stats to show: the frame keeps its size


def test_the_energy_line_says_which_way_the_ratio_goes_and_against_what():
    from spikedet.webcam.overlay import stats_lines

    cheaper = stats_lines({"detections": [], "energy": {"snn_mJ": 1.0, "ann_mJ": 2.6, "efficiency": 2.6}}, fps=10)
    assert cheaper[1].endswith("2.6x less (compute-only, fp32 ANN)")
    dearer = stats_lines({"detections": [], "energy": {"snn_mJ": 2.0, "ann_mJ": 1.0, "efficiency": 0.5}})
    assert dearer[0].endswith("2.0x more (compute-only, fp32 ANN)")
