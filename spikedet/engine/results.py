"""What a detector found in one image, as every application reports it: :class:`Detection`, the one mapping
from Ultralytics' ``Results`` (:func:`detections`) and the one JSON record of an image (:func:`image_record`).

The HTTP service, ``spikedet predict --json``, ``spikedet energy --json`` and ``spikedet demo --json`` all
return :func:`image_record`'s shape, one per image::

    {"image": {"path", "width", "height"}, "detections": [{class_id, name, confidence, box}, ...], "energy"?: {...}}

(the service's record has no ``path``: an upload has none).

    >>> image_record(640, 480, [Detection(0, "person", 0.9, (1.0, 2.0, 3.0, 4.0))], path="bus.jpg")["image"]
    {'path': 'bus.jpg', 'width': 640, 'height': 480}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Detection:
    class_id: int
    name: str
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels

    def to_dict(self) -> dict:
        x1, y1, x2, y2 = self.box
        return {"class_id": self.class_id, "name": self.name, "confidence": self.confidence,
                "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}

    def describe(self) -> str:
        """One line of a command's text output: name, confidence and box in pixels."""
        x1, y1, x2, y2 = self.box
        return f"{self.name:<16} {self.confidence:.2f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]"


def detections(result) -> list[Detection]:
    """The detections of one Ultralytics ``Results``: boxes in original-image pixels (0.1 px), confidences
    to 4 decimals."""
    boxes = result.boxes
    return [
        Detection(int(c), result.names.get(int(c), str(int(c))), round(float(p), 4),
                  tuple(round(float(v), 1) for v in xyxy))
        for xyxy, p, c in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
    ]


def image_record(width: int, height: int, found: Sequence[Detection], *, path: str | Path | None = None,
                 energy: dict | None = None) -> dict:
    """The JSON record of one image: its path (when it has one) and size, its detections and, when measured,
    its energy report (``EnergyReport.to_dict()``)."""
    image = {"path": str(path)} if path is not None else {}
    record = {"image": {**image, "width": int(width), "height": int(height)},
              "detections": [d.to_dict() for d in found]}
    if energy is not None:
        record["energy"] = energy
    return record
