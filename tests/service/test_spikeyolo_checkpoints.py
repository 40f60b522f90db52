"""The HTTP service and a SpikeYOLO checkpoint (their .pt): served with the pickle opt-in, refused without it."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from spikedet.errors import SpikedetError
from spikedet.service.app import create_app
from spikedet.service.server import BackgroundServer
from spikedet.service.settings import Settings
from spikedet.service.state import default_factory
from tests.service.common import SAMPLE, wait_status


def test_the_service_serves_their_checkpoint_with_the_pickle_opt_in(spikeyolo_tiny):
    from spikedet.detector import Detector
    from spikedet.service.images import decode

    settings = Settings(weights=str(spikeyolo_tiny), allow_pickle=True, imgsz=64, device="cpu")
    with BackgroundServer(create_app(settings, default_factory)) as url:
        wait_status(url, "ready", timeout=120)
        data = SAMPLE.read_bytes()
        r = httpx.post(url + "/v1/detect", params={"conf": 0.01}, files={"image": ("a.jpg", data, "image/jpeg")},
                       timeout=60)
        assert r.status_code == 200, r.text[:300]
        body = r.json()
    assert body["model"]["neuron"]["types"] == ["ILIF"] and body["model"]["weights"] == spikeyolo_tiny.name
    expected = Detector(spikeyolo_tiny, imgsz=64).detect(decode(data, settings.max_pixels), conf=0.01).to_dict(layers=False)
    expected = json.loads(json.dumps(expected))
    assert body["detections"] == expected["detections"] and body["energy"] == expected["energy"]


def test_the_service_refuses_their_checkpoint_without_the_opt_in(spikeyolo_tiny):
    with pytest.raises(SpikedetError, match="is a pickle"):
        default_factory(Settings(weights=str(spikeyolo_tiny), allow_pickle=False, imgsz=64))
    proc = subprocess.run([sys.executable, "-m", "spikedet", "serve", "--weights", str(spikeyolo_tiny), "--port", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--allow-pickle" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
