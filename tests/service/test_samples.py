"""GET /v1/samples/NAME (service/routes/samples.py): the page's sample image, served from Ultralytics' assets."""

from __future__ import annotations

import httpx


def test_the_sample_image_is_served_and_unknown_names_are_404(fake_app):
    from spikedet.service.routes.samples import sample_path

    with fake_app() as url:
        r = httpx.get(url + "/v1/samples/bus.jpg", timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content == sample_path("bus.jpg").read_bytes()
        for bad in ("nope.jpg", "setup.py"):
            missing = httpx.get(f"{url}/v1/samples/{bad}", timeout=30)
            assert missing.status_code == 404 and "no sample image" in missing.json()["error"]
