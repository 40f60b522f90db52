"""The Detector (spikedet/detector.py) on both backends: PyTorch and ONNX Runtime give the same kind of answer
(the energy report identical in structure), the default weights find the same objects on both."""

from __future__ import annotations

import cv2
import pytest

from spikedet.assets import asset_dir
from spikedet.detector import Detector
from spikedet.errors import SpikedetError
from tests.support.service import tiny_weights

DEFAULT = asset_dir("weights") / "yolov5n-a2s.safetensors"
INTEGER = asset_dir("weights") / "yolov5n-a2s-int8.safetensors"  # the shipped default, an integer model


def shape_of(value):
    if isinstance(value, dict):
        return {k: shape_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape_of(v) for v in value[:1]]
    return type(value).__name__


def test_onnxruntime_backend_answers_like_the_torch_backend(tmp_path):
    from tests.service.common import SAMPLE

    weights = tiny_weights(tmp_path / "tiny.safetensors")
    image = cv2.imread(str(SAMPLE))
    answers = {b: Detector(weights, imgsz=64, backend=b).detect(image, conf=0.0).to_dict(layers=True)
               for b in ("torch", "onnxruntime")}
    torch_answer, onnx_answer = answers["torch"], answers["onnxruntime"]
    assert shape_of(onnx_answer["energy"]) == shape_of(torch_answer["energy"])
    assert onnx_answer["model"]["backend"] == "onnxruntime" and torch_answer["model"]["backend"] == "torch"
    assert onnx_answer["image"] == torch_answer["image"]
    assert onnx_answer["energy"]["spikes"] > 0 and onnx_answer["detections"]
    for d in onnx_answer["detections"]:  # boxes in the original image's pixels
        box = d["box"]
        assert 0 <= box["x1"] <= box["x2"] <= image.shape[1] and 0 <= box["y1"] <= box["y2"] <= image.shape[0]


def test_bad_backend_or_onnxruntime_off_the_cpu_is_refused(tmp_path):
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    with pytest.raises(SpikedetError, match="backend must be one of"):
        Detector(weights, backend="tensorrt")
    with pytest.raises(SpikedetError, match="counting=auto"):
        Detector(weights, backend="onnxruntime", counting="unary")


@pytest.mark.skipif(not INTEGER.is_file(), reason="the default weights are not installed")
def test_an_integer_model_gives_the_same_detections_and_energy_on_both_backends_on_a_non_square_image():
    """The integer graph takes any size, so ONNX Runtime is fed the rectangle PyTorch's predictor makes (here
    160 x 128 from a 4:3 picture): the same boxes, scores and classes, and the same report layer by layer."""
    from ultralytics.utils import ASSETS

    image = cv2.imread(str(ASSETS / "bus.jpg"))[:600]  # 810 x 600: landscape, so the rectangle is not square
    answers = {}
    for backend in ("torch", "onnxruntime"):
        detector = Detector(INTEGER, imgsz=160, backend=backend)
        answers[backend] = [detector.detect(image, conf=0.1).to_dict(layers=True) for _ in range(2)]
    torch_answer, onnx_answer = answers["torch"][-1], answers["onnxruntime"][-1]
    assert onnx_answer["detections"] and onnx_answer["detections"] == torch_answer["detections"]
    assert onnx_answer["energy"] == torch_answer["energy"] and onnx_answer["energy"]["spikes"] > 0
    assert answers["onnxruntime"][0]["energy"] == onnx_answer["energy"]  # the first run (template made) = the second
    assert onnx_answer["energy"]["layers"][0]["input_elements"] == 3 * 128 * 160  # the rectangle, not the square
