"""Energy from an exported graph's spike counts (spikedet/measure/graph_energy.py): the same report as the
PyTorch hooks give on the same input, in structure and in value."""

from __future__ import annotations

import pytest
import torch

from spikedet.convert.bitplane import spiking
from spikedet.measure.energy import estimate_energy
from spikedet.measure.graph_energy import GraphEnergy, GraphSession
from spikedet.model.detection import SpikeDetectionModel


def shape_of(value):
    if isinstance(value, dict):
        return {k: shape_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape_of(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("form", [pytest.param("counts", marks=pytest.mark.slow), "codes"])
def test_report_from_graph_counts_equals_the_pytorch_report(tmp_path, form):
    """Both forms of the graph's counts: counted in the graph (slow: the graph's counts themselves are checked
    by tests/convert/test_onnx.py), or its codes counted here (the backend's form)."""
    model = spiking(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval(), "integer")
    session = GraphSession(model, 64, tmp_path, form=form)  # exports with counts, runs ONNX Runtime
    assert isinstance(session.energy, GraphEnergy) and session.energy.description["form"] == form
    torch.manual_seed(0)
    for _ in range(2):
        x = torch.rand(1, 3, 64, 64)
        output, report = session.run(x.numpy())
        assert output.shape[0] == 1 and output.shape[1] == 4 + len(model.names)
        graph = report.to_dict(layers=True)
        hooks = estimate_energy(model, x)[0].to_dict(layers=True)
        assert shape_of(graph) == shape_of(hooks)
        assert [layer["name"] for layer in graph["layers"]] == [layer["name"] for layer in hooks["layers"]]
        assert graph["macs"] == hooks["macs"] and graph["ann_mJ"] == hooks["ann_mJ"] and graph["spikes"] > 0
        # the counts are exact; float32 sums in another order may flip a rare code, so the totals agree closely
        assert abs(graph["spikes"] - hooks["spikes"]) <= 1e-3 * hooks["spikes"]
        assert abs(graph["snn_mJ"] - hooks["snn_mJ"]) <= 1e-3 * hooks["snn_mJ"]
        for name, values in graph["energy_models"].items():
            assert abs(values["snn_mJ"] - hooks["energy_models"][name]["snn_mJ"]) <= 1e-3 * values["snn_mJ"]
