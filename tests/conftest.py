"""Shared test fixtures. Tests never touch the network and never write outside tmp dirs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Keep Ultralytics' settings, fonts and DDP files of the test run away from the user's config dir.
os.environ.setdefault("SPIKEDET_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "spikedet-test-config"))
os.environ.setdefault("SPIKEDET_CACHE_DIR", str(Path(tempfile.gettempdir()) / "spikedet-test-cache"))
os.environ.pop("SPIKEDET_WEIGHTS", None)

import spikedet  # noqa: E402,F401  (offline switches before anything imports Ultralytics)


@pytest.fixture(scope="session")
def coco8_yaml(tmp_path_factory) -> str:
    """A copy of the shipped coco8 (YAML and images): Ultralytics writes its label caches beside the labels."""
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(ROOT / "data" / "coco8", root / "coco8")
    shutil.copy(ROOT / "data" / "coco8.yaml", root / "coco8.yaml")
    return str(root / "coco8.yaml")


@pytest.fixture(scope="session")
def coco8_val_images() -> Path:
    return ROOT / "data" / "coco8" / "images" / "val"


@pytest.fixture(scope="session")
def spikeyolo_tiny() -> Path:
    """A SpikeYOLO checkpoint in their own format (tiny random model, stripped; tests/fixtures/spikeyolo/SOURCE.md)."""
    return ROOT / "tests" / "fixtures" / "spikeyolo" / "spikeyolo-tiny-stripped.pt"


@pytest.fixture(scope="session")
def spikeyolo_tiny_reference() -> Path:
    """What SpikeYOLO's own code computes from ``spikeyolo_tiny`` on two inputs (compact: hashes and sums)."""
    return ROOT / "tests" / "fixtures" / "spikeyolo" / "spikeyolo-tiny.compact-ref.safetensors"


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, coco8_yaml) -> Path:
    """A small SpikeYOLO trained for two epochs on coco8 (shared by the tests that need weights)."""
    from spikedet.engine.yolo import SpikeYOLO

    project = tmp_path_factory.mktemp("runs")
    model = SpikeYOLO("spikeyolo-t.yaml")
    model.train(
        data=coco8_yaml, epochs=2, imgsz=160, batch=4, workers=0, project=str(project), name="t",
        plots=False, seed=0, deterministic=True, verbose=False, exist_ok=True,
    )
    return Path(model.trainer.last)
