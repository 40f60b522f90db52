"""ONNX export of the integer spiking model, checked with onnxruntime on coco8 images."""

import json
import subprocess
import sys

import pytest

from spikedet.assets import asset_dir

DEFAULT = asset_dir("weights") / "yolov5n-a2s.safetensors"


@pytest.mark.skipif(not DEFAULT.is_file(), reason="the default weights are not installed")
def test_onnx_matches_pytorch_on_coco8(tmp_path):
    out = tmp_path / "model.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "export", str(DEFAULT), "-o", str(out), "imgsz=320", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    check = json.loads(proc.stdout)["check"]
    assert out.stat().st_size > 1_000_000 and check["images"] == 4 and check["codes_total"] > 1_000_000
    # float32 sums in another order flip codes on rounding boundaries, and flips propagate (see spikedet.export);
    # the thresholds bound that, and the detections must still mostly agree
    assert check["mismatch_rate"] < 0.25
    assert check["boxes_compared"] >= 5 and check["agreement"] >= 0.7

    import onnxruntime as ort
    import torch

    from spikedet.convert.bitplane import spiking
    from spikedet.convert.verify import detection_agreement
    from spikedet.io.images import load_batch, sample_images
    from spikedet.io.weights import load_model

    # the file handed to the user (head output only) against PyTorch, on the same coco8 images
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = spiking(load_model(DEFAULT), "integer")
    images, _ = load_batch(sample_images("val"), 320, 4)
    matched = compared = 0
    with torch.no_grad():
        for image in images:
            (y,) = session.run(None, {"images": image[None].numpy()})
            assert y.shape == (1, 84, 6300)
            m, c = detection_agreement(torch.from_numpy(y), model(image[None])[0])
            matched, compared = matched + m, compared + c
    assert compared >= 5 and matched / compared >= 0.7


def test_onnx_carries_ultralytics_metadata_so_yolo_shows_class_names(tmp_path, coco8_val_images):
    """YOLO("x.onnx") reads names, stride, size and task from the file; the input stays float [0, 1] and
    output0 stays the first output, whatever else the graph carries."""
    import onnx
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.backends.base import BaseBackend

    from spikedet.convert.bitplane import spiking
    from spikedet.convert.onnx import export_onnx
    from spikedet.io.weights import load_model

    model = spiking(load_model("spikeyolo-t.yaml").eval(), "integer")
    model.names = {i: f"thing{i}" for i in range(len(model.names))}
    for codes in (False, True):
        out = export_onnx(model, tmp_path / f"t{int(codes)}.onnx", imgsz=64, with_codes=codes)
        graph = onnx.load(str(out))
        assert graph.graph.output[0].name == "output0" and graph.graph.input[0].name == "images"
        assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        meta = BaseBackend.read_metadata(out)
        assert meta["task"] == "detect" and meta["stride"] == "32" and meta["imgsz"] == "[64, 64]"
    yolo = YOLO(str(tmp_path / "t0.onnx"), task="detect")
    result = yolo.predict(str(next(coco8_val_images.glob("*.jpg"))), imgsz=64, conf=0.0, verbose=False)[0]
    assert result.names == model.names
    assert len(result.boxes) > 0 and all(result.names[int(c)].startswith("thing") for c in result.boxes.cls)
    assert torch.isfinite(result.boxes.xyxy).all()


def test_spike_counts_follow_output0_and_ultralytics_still_reads_the_graph(tmp_path):
    """``with_counts``: output0 first (what YOLO("x.onnx") reads), then one exact int64 [spikes, silent, code
    sum] per distinct spike train, each named in the graph's metadata, agreeing with the train's codes."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from ultralytics import YOLO

    from spikedet.convert.bitplane import spiking
    from spikedet.convert.onnx import count_points, export_onnx
    from spikedet.model.detection import SpikeDetectionModel
    from spikedet.snn.spikes import SpikeTrain

    # Seeded: PyTorch and ONNX Runtime sum in float32 in different orders, and how far a flipped code
    # cascades depends on the weights; these fire identical codes but for rare flips (issue 11 makes it exact).
    torch.manual_seed(0)
    model = spiking(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval(), "integer")
    path = export_onnx(model, tmp_path / "counts.onnx", imgsz=64, with_counts=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    description = count_points(path)
    points = description["points"]
    assert description["form"] == "counts"
    assert names[0] == "output0" and names[1:] == [f"counts{i}" for i in range(len(names) - 1)]
    assert {p["output"] for p in points} == set(range(len(names) - 1))
    x = torch.rand(1, 3, 64, 64)
    outputs = session.run(None, {"images": x.numpy()})
    fired = []  # what every neuron fired, in PyTorch, on the same image
    hooks = [m.register_forward_hook(lambda mod, i, o: fired.append(o) if isinstance(o, SpikeTrain) else None)
             for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    neurons = [p for p in points if p["kind"] == "neuron"]
    assert len(neurons) == len(fired)
    mismatched = 0
    for point, train in zip(neurons, fired):
        table = train.code.spike_table().to(torch.int64)
        codes = train.codes.reshape(-1).to(torch.int64)
        expected = [int(table[codes].sum()), int((table[codes] == 0).sum()), int(codes.sum())]
        got = outputs[1 + point["output"]]
        assert got.dtype == np.int64 and got.shape == (3,)
        mismatched += got.tolist() != expected
    assert mismatched <= len(neurons) // 20  # float32 sums in another order may flip a rare code

    found = YOLO(str(path), task="detect").predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)
    assert len(found) == 1 and found[0].boxes is not None
