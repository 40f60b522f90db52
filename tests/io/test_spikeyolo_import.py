"""The import pipeline: their checkpoint -> spikedet weights, written only when a given reference agrees."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from spikedet.io.spikeyolo_import import import_spikeyolo_weights
from spikedet.io.weights import load_model


def test_weights_are_written_with_their_origin(spikeyolo_tiny, spikeyolo_tiny_reference, tmp_path):
    result = import_spikeyolo_weights(spikeyolo_tiny, tmp_path / "t.safetensors", reference=spikeyolo_tiny_reference)
    assert result.comparison["equal"] and result.output == tmp_path / "t.safetensors"
    model = load_model(result.output)
    assert sum(p.numel() for p in model.parameters()) == 843_480 and model.names[0] == "person"
    assert result.as_dict()["read"]["width"] == 0.0625


def test_nothing_is_written_when_the_reference_disagrees(spikeyolo_tiny, spikeyolo_tiny_reference, tmp_path):
    tensors = load_file(str(spikeyolo_tiny_reference))
    with safe_open(str(spikeyolo_tiny_reference), "pt") as f:
        metadata = f.metadata()
    tensors["bus.output"] = tensors["bus.output"] + 1e-3  # their head output, moved beyond the tolerance
    wrong = tmp_path / "wrong.safetensors"
    save_file(tensors, str(wrong), metadata=metadata)
    result = import_spikeyolo_weights(spikeyolo_tiny, tmp_path / "t.safetensors", reference=wrong)
    bus = result.comparison["inputs"]["bus"]
    assert not result.comparison["equal"] and not bus["output_close"] and bus["spike_mismatches"] == 0
    assert result.output is None and not (tmp_path / "t.safetensors").exists()
    assert json.loads(json.dumps(result.as_dict()))["output"] is None and torch.isfinite(torch.tensor(bus["output_max_abs_diff"]))
