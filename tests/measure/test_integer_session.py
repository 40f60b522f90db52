"""An integer model on ONNX Runtime (measure/integer_session.py): the same output0 and the same energy report as
the PyTorch path on the same input, for the A2S model and for SpikeYOLO."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikedet.assets import asset_dir
from spikedet.convert.integer import to_integer
from spikedet.io.images import default_image, letterbox_tensor, read_image
from spikedet.io.weights import load_model
from spikedet.measure.energy import measure
from tests.convert.test_integer import spikeyolo_t

pytest.importorskip("onnxruntime")


def integer_a2s():
    image = letterbox_tensor(read_image(default_image()), 320)[None]
    return to_integer(load_model(asset_dir("weights") / "yolov5n-a2s.safetensors"), image)[0], image


def integer_spikeyolo():
    image = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(0)) / 255
    return to_integer(spikeyolo_t({"type": "IBRALIF", "D": 5.11, "N": 100, "T": 1}), image)[0], image


@pytest.mark.parametrize("make", [integer_a2s, integer_spikeyolo], ids=["a2s", "spikeyolo"])
def test_onnxruntime_gives_the_pytorch_detections_and_energy_of_an_integer_model(make, tmp_path):
    from spikedet.measure.integer_session import IntegerGraphSession

    model, image = make()
    with measure(model) as recorder, torch.no_grad():
        expected = model(image)[0]
    torch_report = recorder.reports()[0].to_dict(layers=True)
    session = IntegerGraphSession(model, image.shape[-1], tmp_path)
    output0, report = session.run(image.numpy())
    assert np.array_equal(output0, expected.numpy())  # same accumulators, same float decode
    onnx_report = report.to_dict(layers=True)
    assert onnx_report["spikes"] == torch_report["spikes"] > 0
    assert onnx_report["snn_mJ"] == pytest.approx(torch_report["snn_mJ"], rel=1e-12)
    assert [layer["spikes"] for layer in onnx_report["layers"]] == [layer["spikes"] for layer in torch_report["layers"]]
