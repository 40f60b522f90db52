"""Drawing a detection result on a video frame: boxes with labels, FPS and the frame's energy."""

from __future__ import annotations

import math

import cv2
import numpy as np


def _color(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _label(frame: np.ndarray, text: str, x: int, y: int, color, scale: float, thickness: int) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = max(y, h + base + 2)
    cv2.rectangle(frame, (x, y - h - base - 2), (x + w + 4, y), color, -1)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(frame, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv2.LINE_AA)


def annotate(frame: np.ndarray, result: dict, fps: float | None = None) -> np.ndarray:
    """Draw the boxes of ``result`` (``DetectionResult.to_dict()``), the FPS and the energy on ``frame``."""
    h, w = frame.shape[:2]
    scale = max(0.4, min(1.2, w / 1000))
    thick = max(1, round(scale * 2))
    for d in result.get("detections", []):
        b = d["box"]
        color = _color(int(d["class_id"]))
        p1, p2 = (int(b["x1"]), int(b["y1"])), (int(b["x2"]), int(b["y2"]))
        cv2.rectangle(frame, p1, p2, color, thick + 1)
        _label(frame, f"{d['name']} {d['confidence']:.2f}", p1[0], p1[1], color, scale * 0.8, thick)
    e = result.get("energy", {})
    lines = []
    if fps is not None:
        n = len(result.get("detections", []))
        lines.append(f"{fps:.1f} FPS  {n} object{'' if n == 1 else 's'}")
    if e:
        eff = e.get("efficiency")
        lines.append(f"SNN {e.get('snn_mJ', 0):.2f} mJ  ANN {e.get('ann_mJ', 0):.2f} mJ"
                     + (f"  {eff:.1f}x" if isinstance(eff, (int, float)) and math.isfinite(eff) else ""))
    y = 0
    for text in lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y += th + base + 8
        overlay = frame[max(0, y - th - base - 6):y + 2, 0:min(w, tw + 14)]
        overlay[:] = (overlay * 0.35).astype(np.uint8)  # darken behind the text
        cv2.putText(frame, text, (7, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame
