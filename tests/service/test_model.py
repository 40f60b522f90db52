"""GET /v1/model and GET /v1/limits (service/routes/model.py)."""

from __future__ import annotations

from tests.service.common import MAX_PIXELS, MAX_UPLOAD


def test_model_describes_the_loaded_model(client):
    info = client.get("/v1/model").json()
    assert info["architecture"] == "spikeyolo" and info["scale"] == "t" and info["state"] == "converted"
    assert info["classes"] == 80 and info["neuron"]["types"] == ["IBRALIF"]
    assert info["weights"] == "spikedet-tiny.safetensors"


def test_limits_are_public(client):
    limits = client.get("/v1/limits").json()
    assert limits["max_upload_bytes"] == MAX_UPLOAD and limits["max_pixels"] == MAX_PIXELS
    assert limits["imgsz"] == {"default": 160, "min": 32, "max": 640, "multiple_of": 32}
    assert limits["api_key_required"] is False
