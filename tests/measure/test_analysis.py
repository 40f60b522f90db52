"""Activation analysis as functions: code histograms counted exactly, and analyze() on a spiking detector."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from spikedet.convert.bitplane import spiking
from spikedet.convert.verify import neuron_codes
from spikedet.measure import analysis, energy
from spikedet.measure.pipelines import analyze_weights, measure_energy, spiking_yolo
from spikedet.model.detection import SpikeDetectionModel


@pytest.fixture(scope="module")
def model():
    return spiking(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval())


def test_code_histograms_count_every_code_each_neuron_fires(model):
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    codes, _ = neuron_codes(model, x)  # the codes, collected independently, in firing order
    histograms = analysis.CodeHistograms(model)
    try:
        with torch.no_grad():
            model(x)
    finally:
        histograms.close()
    assert len(histograms.hist) == len(codes) == 88
    for (name, counts), q in zip(histograms.hist.items(), codes):
        expected = np.bincount(q.flatten().numpy(), minlength=len(counts))
        assert np.array_equal(counts, expected), name
    rows = histograms.stats()
    for row, q in zip(rows, codes):
        assert row["mean_code"] == pytest.approx(float(q.double().mean()))
        assert row["max_code"] == int(q.max())
        assert row["zero_fraction"] == pytest.approx(float((q == 0).double().mean()))


def test_histograms_through_the_energy_recorder_are_the_same(model):
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    alone = analysis.CodeHistograms(model)
    with torch.no_grad():
        model(x)
    alone.close()
    with energy.measure(model) as recorder, torch.no_grad():
        shared = analysis.CodeHistograms(model, recorder)
        model(x)
        shared.close()
    assert list(shared.hist) == list(alone.hist)
    assert all(np.array_equal(shared.hist[k], alone.hist[k]) for k in alone.hist)


def test_analyze_writes_what_it_measured(tmp_path, coco8_val_images):
    files = [str(f) for f in sorted(coco8_val_images.glob("*.jpg"))[:2]]
    yolo = spiking_yolo(None)  # the shipped default weights
    written = analysis.analyze(yolo, files, tmp_path / "out", imgsz=64)
    assert set(written) == {"code_histograms", "code_usage", "energy_per_layer", "firing_rates_csv", "analysis_json"}
    summary = json.loads(written["analysis_json"].read_text())
    assert summary["images"] == files and len(summary["neurons"]) == 57
    # the per-layer averages are the mean over the images of what the energy pipeline reports per image
    first, second = (measure_energy(None, f, imgsz=64)[0].report for f in files)
    rows = {r["name"]: r for r in summary["per_image_averages"]}
    assert len(rows) == len(first.layers)
    for a, b in zip(first.layers, second.layers):
        assert rows[a.name]["energy_mJ"] == pytest.approx((a.energy_mJ + b.energy_mJ) / 2, rel=1e-9)
        assert rows[a.name]["macs"] == pytest.approx((a.macs + b.macs) / 2, rel=1e-9)
    with open(written["firing_rates_csv"]) as f:
        kinds = [row["kind"] for row in csv.DictReader(f)]
    assert kinds.count("neuron") == 57 and kinds.count("conv") == len(rows)


def test_analyze_weights_is_the_analyze_command(tmp_path, coco8_val_images):
    source = sorted(coco8_val_images.glob("*.jpg"))[0]
    written = analyze_weights(source=source, output=tmp_path / "a", imgsz=64)
    assert written["analysis_json"] == tmp_path / "a" / "analysis.json" and written["code_usage"].stat().st_size > 1000


def test_plots_say_which_layers_they_show_and_cut_axes_to_the_codes_used(tmp_path, monkeypatch):
    import types

    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from spikedet.measure import analysis

    figures = []
    monkeypatch.setattr(analysis, "_save", lambda fig, path: figures.append(fig) or path)
    names = [f"model.{i}.cv1.neuron" for i in range(20)]
    hist = {n: np.bincount([0, 1, 1, 5 + i], minlength=400).astype(float) for i, n in enumerate(names)}
    analysis._plot_histograms(types.SimpleNamespace(hist=hist, levels={n: 399 for n in names}), tmp_path / "h.png")
    fig = figures.pop()
    assert "16 of 20 neuron layers" in fig._suptitle.get_text()
    first = fig.axes[0]
    assert first.get_xlim()[1] == 5.5 and "max 5 of L=399" in first.get_title()  # not out to L
    rows = [{"neuron": n, "range_used": 0.5, "zero_fraction": 0.1, "saturated_fraction": 0.0} for n in names]
    analysis._plot_usage(rows, tmp_path / "u.png")
    labels = [t.get_text() for t in figures.pop().axes[0].get_xticklabels()]
    assert labels == [f"{i}.cv1" for i in range(20)]  # layer names ("model." and ".neuron" dropped), not indices
