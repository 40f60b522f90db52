"""Fixtures of the webcam tests: the tiny converted model, a short video of the coco8 images, a detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.service import tiny_weights
from tests.support.video import coco8_video


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.getbasetemp() / "spikedet-tiny.safetensors")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """An 8-frame 320x240 video of the coco8 images (mp4v)."""
    return coco8_video(tmp_path_factory.mktemp("video") / "coco8.mp4")


@pytest.fixture(scope="module")
def detector(tiny):
    from spikedet.detector import Detector

    return Detector(tiny, imgsz=160)
