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


def integer_spikeyolo(neuron: dict | None = None):
    image = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(0)) / 255
    return to_integer(spikeyolo_t(neuron or {"type": "IBRALIF", "D": 5.11, "N": 100, "T": 1}), image)[0], image


def integer_spikeyolo_ilif_t2():  # a membrane over timesteps: codes the graph materializes itself
    return integer_spikeyolo({"type": "ILIF", "D": 4, "T": 2})


@pytest.mark.parametrize("make", [integer_a2s, integer_spikeyolo, integer_spikeyolo_ilif_t2],
                         ids=["a2s", "spikeyolo", "spikeyolo-ilif-T2"])
def test_onnxruntime_gives_the_pytorch_detections_and_energy_of_an_integer_model(make, tmp_path):
    from spikedet.measure.integer_session import IntegerGraphSession

    model, image = make()
    with measure(model) as recorder, torch.no_grad():
        expected = model(image)[0]
    torch_report = recorder.reports()[0].to_dict(layers=True)
    session = IntegerGraphSession(model, tmp_path)
    output0, report = session.run(image.numpy())
    if make is integer_spikeyolo_ilif_t2:
        # known gap: over T > 1 PyTorch averages the head's float32 values per timestep, the graph (and its spec)
        # scales the exact sum of accumulators; the accumulators agree, the decoded floats by a few ulp
        np.testing.assert_allclose(output0, expected.numpy(), rtol=1e-5, atol=1e-4)
    else:
        assert np.array_equal(output0, expected.numpy())  # same accumulators, same float decode
    onnx_report = report.to_dict(layers=True)
    assert onnx_report["spikes"] == torch_report["spikes"] > 0
    assert onnx_report["snn_mJ"] == pytest.approx(torch_report["snn_mJ"], rel=1e-12)
    assert [layer["spikes"] for layer in onnx_report["layers"]] == [layer["spikes"] for layer in torch_report["layers"]]
    # every count the report is built from: silent elements (sparsity), neuron spikes, code sums through the models
    assert onnx_report["layers"] == torch_report["layers"]
    assert onnx_report["neurons"] == torch_report["neurons"]
    assert onnx_report["activation_sparsity"] == torch_report["activation_sparsity"]


def test_one_session_serves_every_input_size_and_keeps_the_templates_it_used_last(tmp_path, monkeypatch):
    """The graph takes any size; each size's report template is made once, and only the last TEMPLATES kept."""
    from spikedet.measure import integer_session
    from spikedet.measure.integer_session import IntegerGraphSession

    monkeypatch.setattr(integer_session, "TEMPLATES", 2)
    model, image = integer_spikeyolo()
    session = IntegerGraphSession(model, tmp_path)
    for h, w in ((64, 64), (64, 96), (96, 64), (64, 96)):
        x = torch.nn.functional.interpolate(image, size=(h, w), mode="nearest")
        with measure(model) as recorder, torch.no_grad():
            model(x)
        _, report = session.run(x.numpy())
        assert report.to_dict(layers=True)["layers"] == recorder.reports()[0].to_dict(layers=True)["layers"]
    assert list(session._energy) == [(96, 64), (64, 96)]  # 64x64, used first and not since, was dropped
