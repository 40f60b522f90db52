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
    records = json.loads(proc.stdout)
    # one record per image, the service's shape: image path and size, the detections, the full report under energy
    assert [r["image"]["path"] for r in records] == [str(p) for p in sorted(coco8_val_images.glob("*.jpg"))]
    assert all(r["image"]["width"] > 0 and isinstance(r["detections"], list) for r in records)
    reports = [r["energy"] for r in records]
    assert len(reports) == 4 and all(r["constants"]["e_ac_pj"] == 0.5 for r in reports)
    # each image is measured on its own: the same figures as when it is given alone
    first = sorted(coco8_val_images.glob("*.jpg"))[0]
    alone = subprocess.run(
        [sys.executable, "-m", "spikedet", "energy", str(trained_checkpoint), f"source={first}", "imgsz=64", "e_ac=0.5", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert json.loads(alone.stdout)[0]["energy"]["snn_mJ"] == pytest.approx(reports[0]["snn_mJ"])
    for r in reports:
        assert r["efficiency"] == pytest.approx(r["ann_mJ"] / r["snn_mJ"])
        assert r["snn_mJ"] == pytest.approx(sum(l["energy_mJ"] for l in r["layers"]))
        assert r["layers"][0]["input"] == "real" and all(l["input"] != "real" for l in r["layers"][1:])


def test_energy_command_reports_every_model_and_leads_with_the_chosen_one(trained_checkpoint, coco8_val_images):
    first = sorted(coco8_val_images.glob("*.jpg"))[0]
    base = [sys.executable, "-m", "spikedet", "energy", str(trained_checkpoint), f"source={first}", "imgsz=64"]
    proc = subprocess.run([*base, "e_int_add=0.2", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)[0]["energy"]
    models = report["energy_models"]
    assert set(models) == {"convention", "integer", "memory", "spikeyolo"}
    assert models["convention"]["snn_mJ"] == report["snn_mJ"]  # the top level stays the field's convention
    assert models["integer"]["constants"]["e_int_add_pj"]["value"] == 0.2
    acs = sum(l["acs"] for l in report["layers"])
    first_macs = report["layers"][0]["macs"]
    assert models["integer"]["snn_mJ"] == pytest.approx((first_macs * 0.4 + acs * 0.2) * 1e-9)
    text = subprocess.run([*base, "energy_model=memory"], capture_output=True, text=True, timeout=600)
    assert text.returncode == 0, text.stderr[-2000:]
    lines = text.stdout.splitlines()
    image_line = next(line for line in lines if "(memory): " in line)
    verdict = image_line.split("(memory): ", 1)[1]
    assert verdict.split(";")[0].endswith("with memory traffic and neuron updates (int8 network, on-chip SRAM)")
    assert any("spikes per input element" in line for line in lines)
    bad = subprocess.run([*base, "e_sram_8kb=500"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "e_sram_8kb" in bad.stderr


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


def test_energy_and_analyze_refuse_bad_weights_and_outputs_in_one_line_before_loading(tmp_path):
    from spikedet.errors import SpikedetError
    from spikedet.measure.pipelines import analyze_weights, measure_energy

    notes = tmp_path / "notes.md"
    notes.write_text("not weights")
    with pytest.raises(SpikedetError, match="unsupported weights format '.md'"):
        measure_energy(notes)
    with pytest.raises(SpikedetError, match="is a file, not a folder"):
        analyze_weights(output=notes)
