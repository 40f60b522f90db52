"""spikedet info: JSON on stdout only, the papers' parameter counts; spikedet predict behaves like yolo predict."""

import json
import os
import subprocess
import sys


def run_cli(*args, timeout=300, cwd=None):
    # as a user runs it: Ultralytics sends runs under its own package while PYTEST_CURRENT_TEST is set
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return subprocess.run([sys.executable, "-m", "spikedet", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def test_info_json_on_stdout_only():
    proc = run_cli("info", "spikeyolo-t.yaml", "imgsz=64", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["params"] == sum(layer["params"] for layer in report["layers"])
    assert report["macs"] > report["macs_unmerged"] > 0  # merged 3x3s cost more than the chains they replace
    assert report["scale"] == "t" and report["neuron"]["types"] == ["IBRALIF"] and report["neuron"]["L"] == 511


def test_info_paper_parameter_counts():
    """Parameter counts at nc=80 within 1% of the papers (13.2M / 23.1M / 48.1M / 68.8M)."""
    from spikedet.model.detection import SpikeDetectionModel

    for scale, paper in [("n", 13.2e6), ("s", 23.1e6), ("m", 48.1e6), ("l", 68.8e6)]:
        params = sum(p.numel() for p in SpikeDetectionModel(f"spikeyolo-{scale}.yaml", verbose=False).parameters())
        assert abs(params - paper) / paper < 0.01, (scale, params)


def test_predict_saves_like_yolo_predict_and_prints_each_image_once(tmp_path):
    args = ("predict", "weights=yolov5n-a2s.safetensors", "source=data/coco8/images/val", "imgsz=64")
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "runs" / "detect" / "predict").is_dir(), first.stderr[-1500:]
    saved = sorted(p.name for p in (tmp_path / "runs" / "detect" / "predict").iterdir())
    assert len(saved) == 4 and all(name.endswith(".jpg") for name in saved)
    image_lines = [line for line in (first.stdout + first.stderr).splitlines() if "000000000036.jpg" in line]
    assert len(image_lines) == 1 and "detection" in image_lines[0]  # once, ours; not Ultralytics' line as well
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and len(list((tmp_path / "runs" / "detect" / "predict-2").iterdir())) == 4
    off = run_cli(*args, "save=False", cwd=tmp_path)
    assert off.returncode == 0 and sorted(p.name for p in (tmp_path / "runs" / "detect").iterdir()) == ["predict", "predict-2"]


def test_predict_json_is_the_service_record_per_image_with_energy_when_asked(tmp_path):
    proc = run_cli("predict", "source=bus.jpg", "imgsz=64", "energy=True", "save=False", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record,) = json.loads(proc.stdout)
    assert record["image"]["path"].endswith("bus.jpg") and (record["image"]["width"], record["image"]["height"]) == (810, 1080)
    assert set(record) == {"image", "detections", "energy"} and record["energy"]["snn_mJ"] > 0
    assert all(set(d) == {"class_id", "name", "confidence", "box"} for d in record["detections"])
    plain = json.loads(run_cli("predict", "source=bus.jpg", "imgsz=64", "save=False", "--json", cwd=tmp_path).stdout)
    assert set(plain[0]) == {"image", "detections"} and plain[0]["detections"] == record["detections"]
    assert not (tmp_path / "runs").exists()


def test_training_ends_with_best_pt_and_the_commands_that_follow():
    from spikedet.cli.model import next_steps

    lines = next_steps("runs/detect/train/weights/best.pt", "coco8.yaml")
    assert lines[0] == "best weights: runs/detect/train/weights/best.pt"
    commands = [line.split()[1] for line in lines[2:]]
    assert commands == ["val", "convert", "energy"]
    assert "runs/detect/train/weights/best-bitplane.safetensors" in lines[3] and lines[4].split()[2] == lines[3].split()[-1]


def test_analyze_ends_with_a_short_summary():
    from spikedet.cli.measure import analysis_summary

    layer = {"input": "spikes", "spikes": 30.0, "input_elements": 10.0, "firing_rate": 3.0, "name": "model.2.cv1"}
    idle = {**layer, "spikes": 5.0, "firing_rate": 0.5, "name": "model.9.cv2"}
    summary = {"images": ["a.jpg", "b.jpg"], "energy_models": {"convention": {"snn_mJ": 1.0, "ann_mJ": 2.5, "efficiency": 2.5}},
               "per_image_averages": [{"input": "real", "name": "model.0"}, layer, idle],
               "neurons": [{"saturated_fraction": 0.2}, {"saturated_fraction": 0.0}]}
    lines = analysis_summary(summary)
    assert lines[0] == "2 images, mean per image:" and "ANN / SNN 2.50x" in lines[1]
    assert "1.750 spikes per input element over 2 spiking convs" in lines[2]
    assert "highest 3.000 (model.2.cv1)" in lines[2] and "lowest 0.500 (model.9.cv2)" in lines[2]
    assert lines[3].strip().startswith("1 of 2 neuron layers saturate")
