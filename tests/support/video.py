"""Test videos: a short clip made from the shipped coco8 images, and reading a video's frames back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
#: (width, height) of the test clip
SIZE = (320, 240)


def coco8_video(path: Path, size: tuple[int, int] = SIZE, fps: float = 10) -> Path:
    """Write the 8 coco8 images, resized to ``size``, as a video (mp4v) at ``path``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    images = sorted((ROOT / "data" / "coco8" / "images").glob("*/*.jpg"))
    assert len(images) == 8
    for image in images:
        writer.write(cv2.resize(cv2.imread(str(image)), size))
    writer.release()
    return path


def frames_of(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
