"""One model behind every command: predict, energy, the Detector (the service's and the webcam's model) and the
HTTP service return the same detections for the same image and settings, for a float spiking model and for its
integer deployment model (which all of them run with the same integer arithmetic)."""

from __future__ import annotations

import cv2
import httpx
import pytest

from spikedet.assets import asset_dir
from spikedet.io.images import default_image
from spikedet.convert.pipelines import integer_weights
from spikedet.detector import Detector
from spikedet.engine.yolo import SpikeYOLO
from spikedet.measure.pipelines import measure_energy, predict_records
from spikedet.nn.mode import spike_path
from spikedet.service.app import create_app
from spikedet.service.server import BackgroundServer
from spikedet.service.settings import Settings
from tests.support.service import wait_ready

FLOAT = asset_dir("weights") / "yolov5n-a2s.safetensors"
IMGSZ, CONF = 320, 0.25


@pytest.fixture(scope="module")
def integer_model(tmp_path_factory):
    return integer_weights(FLOAT, tmp_path_factory.mktemp("int") / "a2s-int8.safetensors", images=2).output


def boxes(found) -> list[tuple]:
    """Class, confidence and box of each detection, rounded to what the JSON records carry."""
    rows = []
    for d in found:
        d = d if isinstance(d, dict) else d.to_dict()
        box = d["box"]
        rows.append((d["class_id"], round(d["confidence"], 4), *(round(box[k], 1) for k in ("x1", "y1", "x2", "y2"))))
    return sorted(rows)


@pytest.mark.parametrize("which", ["float", "integer"])
def test_predict_energy_the_detector_and_the_service_find_the_same_boxes(which, integer_model):
    weights = FLOAT if which == "float" else integer_model
    image_path = default_image()
    image = cv2.imread(str(image_path))
    results = {}

    yolo = SpikeYOLO(weights)
    results["predict"] = boxes(next(predict_records(yolo, source=str(image_path), imgsz=IMGSZ, conf=CONF,
                                                    save=False, verbose=False))[1])
    assert spike_path(yolo.model) == ("exact" if which == "integer" else "integer")
    results["energy"] = boxes(measure_energy(weights, image_path, imgsz=IMGSZ, conf=CONF)[0].detections)
    detector = Detector(weights, imgsz=IMGSZ)
    results["detector"] = boxes(detector.detect(image, conf=CONF).detections)
    with BackgroundServer(create_app(Settings(weights=str(weights), imgsz=IMGSZ))) as url:
        wait_ready(url)
        answer = httpx.post(f"{url}/v1/detect", params={"conf": CONF}, content=image_path.read_bytes(),
                            headers={"content-type": "image/jpeg"}, timeout=120).json()
    results["service"] = boxes(answer["detections"])
    assert results["predict"], "the shipped model finds objects on bus.jpg"
    for entry_point, found in results.items():
        assert found == results["predict"], entry_point
