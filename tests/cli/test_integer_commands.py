"""spikedet convert --integer, verify and export on an integer model, as a user runs them."""

from __future__ import annotations

import json

from safetensors import safe_open

from tests.cli.test_model_commands import run_cli


def test_convert_integer_verify_and_export_from_the_command_line(tmp_path):
    out = tmp_path / "int8.safetensors"
    made = run_cli("convert", "yolov5n-a2s.safetensors", "--integer", "-o", str(out), "images=1", "imgsz=160",
                   "--json", timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    report = json.loads(made.stdout)
    assert report["output"] == str(out) and len(report["layers"]) == 60 and report["neurons"] == 57
    assert all(layer["bits"] in (8, 16) for layer in report["layers"])
    with safe_open(str(out), "numpy") as f:
        assert json.loads(f.metadata()["spikedet"])["state"] == "integer"

    checked = run_cli("verify", str(out), "imgsz=160", "images=2", "--json", timeout=600)
    assert checked.returncode == 0, checked.stderr[-2000:]
    result = json.loads(checked.stdout)
    assert result["runtimes"][:2] == ["pytorch", "onnxruntime"] and result["codes"] > 0
    assert set(result["mismatches"].values()) == {0} and result["passed"]

    exported = run_cli("export", str(out), "-o", str(tmp_path / "int8.onnx"), "imgsz=160", timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "0 of" in exported.stdout and "codes" in exported.stdout


def test_bad_integer_inputs_are_one_line_with_exit_code_2(tmp_path):
    not_integer = run_cli("verify", "yolov5n-a2s.safetensors")
    assert not_integer.returncode == 2 and "is not an integer model" in not_integer.stderr
    assert len(not_integer.stderr.strip().splitlines()) == 1
    ann = run_cli("convert", "yolov5n.pt", "--integer", "-o", str(tmp_path / "x.safetensors"))
    assert ann.returncode == 2 and "no spiking neurons" in ann.stderr, ann.stderr
    runtime = run_cli("verify", "runtimes=pytorch,tpu")
    assert runtime.returncode == 2 and "unknown runtime 'tpu'" in runtime.stderr, runtime.stderr
