"""The conversion check: float64 exact on both paths, float32 reported as rates."""

import torch

from spikedet.nn.mode import set_spike_mode


def test_spikeyolo_conversion_float64_exact_and_paths_agree(trained_checkpoint):
    from spikedet.convert.verify import convert_and_verify
    from spikedet.engine.yolo import SpikeYOLO
    from spikedet.io.images import load_batch, sample_images

    model = SpikeYOLO(str(trained_checkpoint)).model
    images, files = load_batch(sample_images("val"), 96, 2)
    converted, report = convert_and_verify(model, images, files, 96)
    assert report.passed
    for path in ("integer", "bitplane"):
        assert report.float64[path]["code_mismatches"] == 0 and report.float64[path]["codes_total"] > 100_000
        assert report.float64[path]["max_relative_error"] < 1e-9
        assert report.float32[path]["mismatch_rate"] < 0.05
    # the two paths of the converted float32 model give identical outputs up to float32 sums
    set_spike_mode(converted, "integer")
    a = converted(images)[0]
    set_spike_mode(converted, "bitplane")
    b = converted(images)[0]
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)
