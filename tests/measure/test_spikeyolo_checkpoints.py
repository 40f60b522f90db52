"""Energy of a SpikeYOLO checkpoint (their .pt): I-LIF spikes counted unary, and SpikeYOLO's spreadsheet convention
as a named energy model beside spikedet's."""

from __future__ import annotations

import pytest


def test_energy_of_their_checkpoint_under_both_conventions(spikeyolo_tiny, coco8_val_images):
    from spikedet.measure.pipelines import measure_energy

    image = sorted(coco8_val_images.glob("*.jpg"))[0]
    (result,) = measure_energy(spikeyolo_tiny, image, imgsz=64)
    report = result.report.to_dict(layers=True)
    layers = report["layers"]
    assert report["counting"] == "auto" and {l["encoding"] for l in layers[1:]} == {"unary"}
    first = layers[0]
    assert first["input"] == "real" and first["energy_mJ"] == pytest.approx(first["macs"] * 4.6e-9)

    models = report["energy_models"]
    assert {k: models["convention"][k] for k in ("snn_mJ", "ann_mJ", "efficiency")} == \
        {k: report[k] for k in ("snn_mJ", "ann_mJ", "efficiency")}
    theirs = models["spikeyolo"]
    # I-LIF sends a code v as v unary spikes, so their "mean integer activation" is our firing rate: the two
    # conventions differ only in the first layer (4.14 pJ per MAC in their sheet) and in the ANN (merged network)
    expected_snn = report["snn_mJ"] - first["macs"] * 4.6e-9 + first["macs"] * 0.9e-9 * 4.6
    assert theirs["snn_mJ"] == pytest.approx(expected_snn, rel=1e-9)
    assert theirs["ann_mJ"] == pytest.approx(report["ann_merged_mJ"], rel=1e-12)
    assert theirs["efficiency"] == pytest.approx(theirs["ann_mJ"] / theirs["snn_mJ"])
    assert theirs["first_layer_pj_per_mac"] == pytest.approx(4.14) and "power_cal.xlsx" in theirs["source"]


def test_analyze_runs_on_their_checkpoint(spikeyolo_tiny, coco8_val_images, tmp_path):
    import json

    from spikedet.measure.pipelines import analyze_weights

    image = sorted(coco8_val_images.glob("*.jpg"))[0]
    files = analyze_weights(spikeyolo_tiny, image, tmp_path / "analysis", imgsz=64)
    summary = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert len(summary["neurons"]) == 88 and all(0 <= n["zero_fraction"] <= 1 for n in summary["neurons"])
    assert all(p.is_file() for p in files.values())
