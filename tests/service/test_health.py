"""GET /healthz and GET /readyz (service/routes/health.py): liveness, readiness while the model loads, a
failed load reported, not fatal."""

from __future__ import annotations

import threading

import httpx

from spikedet.service.app import create_app
from spikedet.service.server import BackgroundServer
from spikedet.service.settings import Settings
from tests.service.common import CAP, SAMPLE, assert_error, wait_status
from tests.support.service import FakeDetector


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["weights"] == "spikedet-tiny.safetensors"
    assert body["max_concurrency"] == CAP


def test_readyz_is_503_until_the_model_is_loaded(fake_app):
    gate = threading.Event()

    def slow_factory(settings):
        gate.wait(30)
        return FakeDetector(settings)

    with fake_app(slow_factory) as url:
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        assert r.headers["retry-after"] == "1"
        assert httpx.get(url + "/healthz").status_code == 200  # alive while loading
        r = httpx.post(url + "/v1/detect", content=SAMPLE.read_bytes(), headers={"content-type": "image/jpeg"})
        assert_error(r, 503)
        assert r.headers["retry-after"] == "1"
        assert_error(httpx.get(url + "/v1/model"), 503)
        gate.set()
        wait_status(url, "ready")
        assert httpx.get(url + "/v1/model").json()["architecture"] == "fake"


def test_failed_load_is_reported_not_fatal(fake_app):
    def broken(settings):
        raise RuntimeError("weights are damaged")

    with fake_app(broken) as url:
        wait_status(url, "failed")
        r = httpx.get(url + "/readyz")
        assert "weights are damaged" in r.json()["error"]
        assert httpx.get(url + "/healthz").status_code == 200
        assert "weights are damaged" in assert_error(httpx.post(url + "/v1/detect", content=b"x"), 503)


def test_pickle_weights_need_the_opt_in(tmp_path):
    fake_pt = tmp_path / "model.pt"
    fake_pt.write_bytes(b"not really a checkpoint")
    with BackgroundServer(create_app(Settings(weights=str(fake_pt)))) as url:
        wait_status(url, "failed")
        assert "pickle" in httpx.get(url + "/readyz").json()["error"]


def test_a_failed_load_shows_clients_no_server_path(fake_app):
    from spikedet.errors import SpikedetError

    def broken(settings):
        raise SpikedetError("cannot load '/srv/private/models/best.safetensors': not usable weights")

    with fake_app(broken) as url:
        wait_status(url, "failed")
        for message in (httpx.get(url + "/readyz").json()["error"],
                        assert_error(httpx.post(url + "/v1/detect", content=b"x"), 503)):
            assert "best.safetensors" in message and "/srv" not in message and "private" not in message
