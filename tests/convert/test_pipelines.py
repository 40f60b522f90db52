"""The convert, a2s and export pipelines: as commands and as Python functions, with the same defaults."""

import json
import subprocess
import sys

import pytest


def test_convert_command_writes_a_model_that_loads_everywhere(trained_checkpoint, tmp_path, coco8_val_images):
    out = tmp_path / "bp.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "convert", str(trained_checkpoint), "-o", str(out), "imgsz=64", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["passed"] and report["output"] == str(out) and out.is_file()
    from spikedet.io.weights import load_safetensors, read_config

    config = read_config(out)
    assert config["state"] == "converted" and config["conversion"]
    model = load_safetensors(out)
    assert model.converted and model.spike_path == "integer"
    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "predict", f"model={out}", f"source={coco8_val_images}", "imgsz=96", "save=False", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads(proc.stdout)) == 4
    # converting a converted model is refused with a clear message
    proc = subprocess.run([sys.executable, "-m", "spikedet", "convert", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "already a converted" in proc.stderr


from spikedet.assets import asset_dir


def test_export_refuses_bad_sizes(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spikedet", "export", "imgsz=100"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "multiple of 32" in proc.stderr


def test_an_ann_is_refused_by_convert_and_export(tmp_path):
    ann = asset_dir("weights") / "yolov5n.pt"
    if not ann.is_file():
        pytest.skip("weights/yolov5n.pt is not present")
    for command in ("convert", "export"):
        proc = subprocess.run([sys.executable, "-m", "spikedet", command, str(ann)], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
        assert proc.returncode == 2 and "no spiking neurons" in proc.stderr, (command, proc.stderr[-500:])
    assert not list(tmp_path.iterdir())  # nothing written


def test_a2s_as_a_function_and_as_a_command_give_the_same_model(tmp_path):
    from spikedet.convert import a2s_weights
    from spikedet.io.weights import read_config

    result = a2s_weights("yolov5n.pt", tmp_path / "f.safetensors", images=2, imgsz=64)
    assert result.neurons == 57 and result.output.is_file() and result.config.encoding == "naf"
    proc = subprocess.run([sys.executable, "-m", "spikedet", "a2s", "yolov5n.pt", "-o", str(tmp_path / "c.safetensors"),
                           "images=2", "imgsz=64", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {**result.as_dict(), "output": str(tmp_path / "c.safetensors")}
    assert read_config(tmp_path / "c.safetensors")["neurons"] == read_config(result.output)["neurons"]


def test_convert_as_a_function(trained_checkpoint, tmp_path):
    from spikedet.convert import convert_weights
    from spikedet.io.weights import load_model

    result = convert_weights(trained_checkpoint, tmp_path / "bp.safetensors", imgsz=64, images=1)
    assert result.report.passed and result.output == tmp_path / "bp.safetensors"
    assert all(v["code_mismatches"] == 0 for v in result.report.float64.values())
    assert result.as_dict()["output"] == str(result.output) and load_model(result.output).converted
