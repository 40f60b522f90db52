"""A SpikeYOLO checkpoint (their .pt) on Ultralytics' loops: fine-tuning keeps I-LIF and starts from their weights,
IBRA-LIF training starts from the same weights, val and predict run on it, and the Detector takes it as is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikedet.io.spikeyolo import import_spikeyolo

STEM = "model.1.unit.body.weight"


@pytest.fixture(scope="module")
def theirs(spikeyolo_tiny):
    return import_spikeyolo(spikeyolo_tiny).model.state_dict()


def _train(source, data, project, name):
    from spikedet import SpikeYOLO

    model = SpikeYOLO(str(source))
    model.train(data=data, epochs=1, imgsz=64, batch=4, workers=0, project=str(project), name=name, exist_ok=True,
                plots=False, val=False, verbose=False, seed=0, deterministic=True)
    return model


def _started_from(trained: dict, theirs: dict) -> float:
    """How far the stem moved: their stem has one +-1 or +-0.5 tap per channel, a fresh one is random."""
    return float((trained[STEM].float() - theirs[STEM]).abs().max())


def test_spikedet_train_continues_from_their_checkpoint_with_i_lif_kept(spikeyolo_tiny, theirs, coco8_yaml, tmp_path):
    import json
    import subprocess
    import sys

    from spikedet.io.weights import load_model

    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "train", coco8_yaml, f"model={spikeyolo_tiny}", "epochs=1", "imgsz=64",
         "batch=4", "workers=0", f"project={tmp_path}", "name=ilif", "plots=False", "val=False", "seed=0", "--json"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = load_model(json.loads(proc.stdout)["last"], allow_pickle=True)  # our own training run's checkpoint
    assert {type(n).__name__ for _, n in trained.neurons()} == {"ILIF"} and len(trained.neurons()) == 88
    assert all(n.L == 4 for _, n in trained.neurons())
    assert all(m.eps == 1e-3 for m in trained.modules() if isinstance(m, torch.nn.BatchNorm2d))
    moved = _started_from(trained.state_dict(), theirs)
    assert 0 < moved < 1e-2  # trained, and from their weights (a fresh stem differs by ~1)
    assert trained.names[0] == "person"


def test_ibra_lif_training_starts_from_their_weights(spikeyolo_tiny, theirs, coco8_yaml, tmp_path):
    from spikedet.io.weights import save_model

    start = import_spikeyolo(spikeyolo_tiny).model.with_neuron({"type": "IBRALIF", "D": 5.11, "N": 100})
    assert torch.equal(start.state_dict()[STEM], theirs[STEM])
    path = save_model(start, tmp_path / "ibra-start.safetensors")
    trained = _train(path, coco8_yaml, tmp_path, "ibra").model
    neurons = [n for _, n in trained.neurons()]
    assert len(neurons) == 88 and all(type(n).__name__ == "IBRALIF" and n.L == 511 and n.N == 100 for n in neurons)
    assert 0 < _started_from(trained.state_dict(), theirs) < 1e-2


def test_val_and_predict_run_on_their_checkpoint(spikeyolo_tiny, coco8_yaml, coco8_val_images):
    from spikedet import SpikeYOLO

    model = SpikeYOLO(str(spikeyolo_tiny))
    metrics = model.val(data=coco8_yaml, imgsz=64, batch=4, workers=0, plots=False, verbose=False)
    assert 0 <= metrics.box.map50 <= 1 and metrics.box.map50 == metrics.results_dict["metrics/mAP50(B)"]
    results = list(model.predict_files(sorted(coco8_val_images.glob("*.jpg"))[:2], imgsz=64, conf=0.01))
    assert len(results) == 2 and all(r.boxes is not None for _, r in results)


def test_the_detector_takes_their_checkpoint_without_opt_in(spikeyolo_tiny, coco8_val_images):
    from spikedet.detector import Detector
    from spikedet.io.images import read_image

    detector = Detector(spikeyolo_tiny, imgsz=64)
    info = detector.info()
    assert info["neuron"]["types"] == ["ILIF"] and info["neuron"]["layers"] == 88 and info["classes"] == 80
    result = detector.detect(read_image(sorted(coco8_val_images.glob("*.jpg"))[0]), conf=0.01)
    report = result.energy.to_dict(layers=True)
    assert report["spikes"] > 0 and report["layers"][0]["input"] == "real"
    assert {layer["encoding"] for layer in report["layers"][1:]} == {"unary"}
    assert isinstance(result.detections, list) and np.isfinite(report["snn_mJ"])
