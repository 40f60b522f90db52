"""The energy and analyze pipelines: as commands and as Python functions."""

import json
import subprocess
import sys

import pytest

E_MAC, E_AC = 4.6e-9, 0.9e-9  # mJ per op


def test_energy_command_prints_one_json_object_per_image(trained_checkpoint, coco8_val_images):
    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "energy", str(trained_checkpoint), f"source={coco8_val_images}",
         "imgsz=64", "e_ac=0.5", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    assert len(reports) == 4 and all(r["constants"]["e_ac_pj"] == 0.5 for r in reports)
    # each image is measured on its own: the same figures as when it is given alone
    first = sorted(coco8_val_images.glob("*.jpg"))[0]
    alone = subprocess.run(
        [sys.executable, "-m", "spikedet", "energy", str(trained_checkpoint), f"source={first}", "imgsz=64", "e_ac=0.5", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert json.loads(alone.stdout)[0]["snn_mJ"] == pytest.approx(reports[0]["snn_mJ"])
    for r in reports:
        assert r["efficiency"] == pytest.approx(r["ann_mJ"] / r["snn_mJ"])
        assert r["snn_mJ"] == pytest.approx(sum(l["energy_mJ"] for l in r["layers"]))
        assert r["layers"][0]["input"] == "real" and all(l["input"] != "real" for l in r["layers"][1:])


def test_analyze_writes_plots_and_rates(trained_checkpoint, coco8_val_images, tmp_path):
    out = tmp_path / "analysis"
    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "analyze", str(trained_checkpoint), f"source={coco8_val_images}",
         "imgsz=64", "-o", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("code_histograms.png", "code_usage.png", "energy_per_layer.png", "firing_rates.csv", "analysis.json"):
        assert (out / name).stat().st_size > 1000
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["neurons"] and all(0 <= n["zero_fraction"] <= 1 for n in summary["neurons"])
    assert (out / "code_histograms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
