"""A SpikeYOLO checkpoint (their .pt) through the converter and the ONNX export: float64 exact, unary I-LIF spikes."""

from __future__ import annotations


def test_convert_is_exact_in_float64_on_their_checkpoint(spikeyolo_tiny, tmp_path):
    from spikedet.convert import convert_weights
    from spikedet.io.weights import load_model

    result = convert_weights(spikeyolo_tiny, tmp_path / "bp.safetensors", imgsz=64, images=2)
    report = result.report
    assert report.passed and set(report.float64) == {"integer", "bitplane"}
    for path, v in report.float64.items():
        assert v["code_mismatches"] == 0 and v["codes_total"] > 100_000, path
    model = load_model(result.output)
    assert model.converted and {n.code.encoding for _, n in model.neurons()} == {"unary"}


def test_export_of_their_checkpoint_matches_pytorch(spikeyolo_tiny, tmp_path):
    from spikedet.convert import export_weights

    result = export_weights(spikeyolo_tiny, tmp_path / "t.onnx", imgsz=64)
    assert result.output.stat().st_size > 100_000
    check = result.check.as_dict()
    assert check["images"] == 4 and check["codes_total"] > 100_000
    assert check["mismatch_rate"] < 0.01 and check["agreement"] >= 0.9
