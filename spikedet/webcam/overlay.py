"""Drawing a detection result on a video frame: boxes as ``predict`` draws them (Ultralytics' ``Annotator``,
its colours and labels), and FPS and the frame's energy in a strip below the picture, never over a box."""

from __future__ import annotations

import math

import cv2
import numpy as np

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.utils.plotting import Annotator, colors


def stats_lines(result: dict, fps: float | None = None) -> list[str]:
    """The overlay's text: FPS and objects, then the frame's energy (SNN vs ANN, compute-only convention)."""
    lines = []
    n = len(result.get("detections", []))
    if fps is not None:
        lines.append(f"{fps:.1f} FPS   {n} object{'' if n == 1 else 's'}")
    e = result.get("energy", {})
    if e:
        eff = e.get("efficiency")
        verdict = ""
        if isinstance(eff, (int, float)) and math.isfinite(eff) and eff > 0:
            # a ratio always says which way it goes and against what (the compute-only float32 convention)
            verdict = f"   {eff:.1f}x less" if eff >= 1 else f"   {1 / eff:.1f}x more"
            verdict += " (compute-only, fp32 ANN)"
        lines.append(f"SNN {e.get('snn_mJ', 0):.2f} mJ/frame   ANN {e.get('ann_mJ', 0):.2f} mJ{verdict}")
    return lines


def annotate(frame: np.ndarray, result: dict, fps: float | None = None) -> np.ndarray:
    """``frame`` with the boxes of ``result`` (``DetectionResult.to_dict()``) drawn as ``predict`` draws them and,
    when there is any, a strip of stats added below it (the returned frame is that much taller)."""
    annotator = Annotator(frame, pil=False, example="abc")
    for d in result.get("detections", []):
        b = d["box"]
        annotator.box_label([b["x1"], b["y1"], b["x2"], b["y2"]], f"{d['name']} {d['confidence']:.2f}",
                            color=colors(int(d["class_id"]), True))
    frame = annotator.result()
    lines = stats_lines(result, fps)
    if not lines:
        return frame
    w = frame.shape[1]
    scale = max(0.45, min(1.0, w / 1000))
    thick = max(1, round(scale * 2))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    step = th + base + 8
    strip = np.full((step * len(lines) + 6, w, 3), 24, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(strip, text, (8, step * (i + 1) - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thick, cv2.LINE_AA)
    return np.vstack([frame, strip])
