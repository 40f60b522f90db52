"""POST /v1/detect (service/routes/detect.py) against `spikedet serve` with the tiny model: the answer is the
detector's, every format raw and multipart, the bad-input battery, the concurrency cap and first come, first
served."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.common import (
    CAP,
    MAX_PIXELS,
    MAX_UPLOAD,
    SAMPLE,
    assert_error,
    encode,
    healthy,
    jpeg_empty_scan,
    png_claiming,
    raw_http,
    rss,
    small_image,
    wait_status,
)
from tests.support.service import FakeDetector


def test_detect_answers_exactly_the_detector_result(client, tiny):
    from spikedet.detector import Detector
    from spikedet.service.images import decode

    data = SAMPLE.read_bytes()
    r = client.post("/v1/detect", params={"conf": 0.001, "iou": 0.5}, files={"image": ("a.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert set(body) == {"image", "detections", "energy", "timing_ms", "model"}
    assert "layers" not in body["energy"]
    assert "server-timing" in r.headers

    expected = Detector(tiny, imgsz=160).detect(decode(data, MAX_PIXELS), conf=0.001, iou=0.5, imgsz=160).to_dict()
    expected = json.loads(json.dumps(expected))
    for key in ("image", "detections", "energy", "model"):
        assert body[key] == expected[key], key
    assert set(body["timing_ms"]) == set(expected["timing_ms"])
    height, width = np.asarray(Image.open(SAMPLE)).shape[:2]
    assert body["image"] == {"width": width, "height": height}


def test_detect_layers_adds_the_per_layer_energy(client):
    r = client.post("/v1/detect?layers=true", content=SAMPLE.read_bytes(), headers={"content-type": "image/jpeg"})
    layers = r.json()["energy"]["layers"]
    assert isinstance(layers, list) and len(layers) > 10 and "energy_mJ" in layers[0]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_detect_accepts_each_format_raw_and_multipart(client, fmt):
    data = encode(small_image(), fmt)
    mime = f"image/{fmt.lower()}"
    raw = client.post("/v1/detect?imgsz=64", content=data, headers={"content-type": mime})
    form = client.post("/v1/detect?imgsz=64", files={"image": (f"x.{fmt.lower()}", data, mime)})
    for r in (raw, form):
        assert r.status_code == 200, r.text[:300]
        assert r.json()["image"] == {"width": 64, "height": 48}


def test_detect_keeps_only_the_image_field(client):
    r = client.post("/v1/detect", data={"note": "hello"},
                    files={"other": ("a.txt", b"text", "text/plain"), "image": ("a.png", encode(small_image(), "PNG"))})
    assert r.status_code == 200, r.text[:300]


def test_bad_input_battery(client, server):
    good = SAMPLE.read_bytes()
    jpeg_header = {"content-type": "image/jpeg"}
    text = b"this is plain text, not an image\n" * 10
    big_real = encode(Image.new("RGB", (2500, 2000), (120, 30, 60)), "PNG")  # 5 Mpx, a few KiB: a small bomb
    assert len(big_real) < MAX_UPLOAD
    over = b"\xff\xd8\xff" + bytes(MAX_UPLOAD + 10)

    def chunked(data: bytes):
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    cases = [
        ("empty raw body", client.post("/v1/detect", content=b"", headers=jpeg_header), 400),
        ("empty image field", client.post("/v1/detect", files={"image": ("a.jpg", b"", "image/jpeg")}), 400),
        ("truncated JPEG", client.post("/v1/detect", content=good[: len(good) * 6 // 10], headers=jpeg_header), 400),
        ("JPEG header only", client.post("/v1/detect", content=good[:40], headers=jpeg_header), 400),
        ("text as image/jpeg", client.post("/v1/detect", content=text, headers=jpeg_header), 415),
        ("text as image field", client.post("/v1/detect", files={"image": ("a.jpg", text, "image/jpeg")}), 415),
        ("GIF", client.post("/v1/detect", content=encode(small_image(), "GIF"),
                            headers={"content-type": "image/gif"}), 415),
        ("text/plain body", client.post("/v1/detect", content=text, headers={"content-type": "text/plain"}), 415),
        ("JSON body", client.post("/v1/detect", json={"image": "x"}), 415),
        ("PNG claiming 50000x50000", client.post("/v1/detect", content=png_claiming(50000, 50000),
                                                 headers={"content-type": "image/png"}), 413),
        ("PNG claiming 50000x50000, multipart", client.post(
            "/v1/detect", files={"image": ("bomb.png", png_claiming(50000, 50000), "image/png")}), 413),
        ("5 Mpx PNG over max_pixels", client.post("/v1/detect",
                                                  files={"image": ("big.png", big_real, "image/png")}), 413),
        ("upload over the limit", client.post("/v1/detect", content=over, headers=jpeg_header), 413),
        ("upload over the limit, multipart", client.post("/v1/detect",
                                                         files={"image": ("a.jpg", over, "image/jpeg")}), 413),
        ("upload over the limit, chunked", client.post("/v1/detect", content=chunked(over), headers=jpeg_header), 413),
        ("wrong field name", client.post("/v1/detect", files={"picture": ("a.jpg", good, "image/jpeg")}), 422),
        ("multipart without boundary", client.post("/v1/detect", content=good,
                                                   headers={"content-type": "multipart/form-data"}), 400),
        ("multipart boundary of 300 characters", client.post(
            "/v1/detect", content=b"--" + b"b" * 300 + b"\r\n", headers={"content-type": "multipart/form-data; boundary="
                                                                             + "b" * 300}), 400),
        ("JPEG with an empty scan", client.post("/v1/detect", content=jpeg_empty_scan(good), headers=jpeg_header), 400),
        ("malformed multipart", client.post("/v1/detect", content=b"garbage" * 100,
                                            headers={"content-type": "multipart/form-data; boundary=xyz"}), 400),
        ("conf=5", client.post("/v1/detect?conf=5", content=good, headers=jpeg_header), 422),
        ("imgsz=7", client.post("/v1/detect?imgsz=7", content=good, headers=jpeg_header), 422),
        ("imgsz=100000", client.post("/v1/detect?imgsz=100000", content=good, headers=jpeg_header), 422),
        ("imgsz=100, not a multiple of 32", client.post("/v1/detect?imgsz=100", content=good,
                                                        headers=jpeg_header), 422),
        ("iou=-1", client.post("/v1/detect?iou=-1", content=good, headers=jpeg_header), 422),
        ("conf=nan", client.post("/v1/detect?conf=nan", content=good, headers=jpeg_header), 422),
        ("unknown path", client.get("/v2/detect"), 404),
        ("wrong method", client.get("/v1/detect"), 405),
        ("wrong method on healthz", client.delete("/healthz"), 405),
    ]
    for name, response, status in cases:
        message = assert_error(response, status)
        assert "\n" not in message, name
    # Content-Length over the limit is refused before any byte of the body is read
    head = (b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            + f"Content-Length: {10 * MAX_UPLOAD}\r\n\r\n".encode())
    assert raw_http(server[0], head, b"\xff\xd8\xff" + bytes(1000), linger=0.2).startswith(b"HTTP/1.1 413")
    # a lying small Content-Length: the server reads only what it declared and never buffers the rest
    head = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n"
    before = rss(server[1])
    answer = raw_http(server[0], head, b"\xff\xd8\xff" + bytes(3 * MAX_UPLOAD))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert rss(server[1]) - before < 50 * 2**20
    healthy(client)


def test_non_finite_numbers_are_valid_json(fake_app):
    class Infinite(FakeDetector):
        def detect(self, image, **kw):
            result = super().detect(image, **kw)
            original = result.to_dict

            def to_dict(layers=False):
                d = original(layers)
                d["energy"]["efficiency"] = float("inf")
                return d

            result.to_dict = to_dict
            return result

    with fake_app(lambda s: Infinite(s)) as url:
        wait_status(url, "ready")
        r = httpx.post(url + "/v1/detect", content=encode(small_image(), "PNG"), headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.json()["energy"]["efficiency"] is None


def test_concurrency_cap_answers_503_with_retry_after_and_memory_stays_bounded(client, server):
    data = (Path(__import__("ultralytics").utils.ASSETS) / "bus.jpg").read_bytes()
    healthy(client)  # warm
    before = rss(server[1])

    def storm(n: int = 32) -> list[httpx.Response]:
        barrier = threading.Barrier(n)
        results: list = [None] * n

        def one(i: int) -> None:
            barrier.wait()
            try:
                results[i] = client.post("/v1/detect", files={"image": ("bus.jpg", data, "image/jpeg")})
            except httpx.HTTPError as e:  # pragma: no cover - reported by the assertion below
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return results

    import psutil

    threads_before = psutil.Process(server[1].pid).num_threads()
    storms = [storm()]
    after_first = rss(server[1])
    storms += [storm() for _ in range(3)]
    after_last = rss(server[1])
    # no thread per request (a plain-def dependency once made FastAPI hop through its pool, and memory grew
    # with every storm): at most max_concurrency inference threads more than before
    assert psutil.Process(server[1].pid).num_threads() <= threads_before + CAP + 1
    for results in storms:
        codes = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
        assert set(codes) <= {200, 503}, codes
        assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
        for r in results:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1"
                assert assert_error(r, 503).startswith("busy")
            else:
                assert r.json()["image"] == {"width": 810, "height": 1080}
    assert after_first - before < 200 * 2**20, (before, after_first)
    assert after_last - after_first < 48 * 2**20, (after_first, after_last)  # flat once warm
    healthy(client)
    assert client.get("/readyz").json()["in_flight"] == 0


def test_requests_get_the_model_first_come_first_served(fake_app):
    """4 clients back to back on one replica: each waits for at most the 3 others, none is starved."""
    delay = 0.05
    with fake_app(lambda s: FakeDetector(s, delay=delay), max_concurrency=4) as url:
        wait_status(url, "ready")
        png = encode(small_image(), "PNG")
        latencies: list[float] = []
        statuses: list[int] = []
        end = time.monotonic() + 2.5

        def client() -> None:  # an assert in a thread would not fail the test: record, check after
            with httpx.Client(base_url=url, timeout=30) as c:
                while time.monotonic() < end:
                    t0 = time.monotonic()
                    statuses.append(c.post("/v1/detect", content=png, headers={"content-type": "image/png"}).status_code)
                    latencies.append(time.monotonic() - t0)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert set(statuses) == {200}
    assert len(latencies) > 20
    assert max(latencies) < 20 * delay, sorted(latencies)[-5:]  # about 4 x delay expected; starvation took seconds


def test_onnxruntime_backend_serves_the_same_answer_shape(client, tiny):
    """`backend=onnxruntime`: the model is exported at start-up, /readyz turns ready, and /v1/detect answers
    detections and an energy report shaped exactly like the torch backend's."""
    from spikedet.service.app import create_app
    from spikedet.service.server import BackgroundServer
    from spikedet.service.settings import Settings

    def keys(value):
        if isinstance(value, dict):
            return {k: keys(v) for k, v in value.items()}
        return type(value).__name__ if not isinstance(value, list) else "list"

    settings = Settings(weights=str(tiny), imgsz=64, backend="onnxruntime")
    with BackgroundServer(create_app(settings)) as url:
        wait_status(url, "ready", timeout=180)
        r = httpx.post(url + "/v1/detect?imgsz=64", content=SAMPLE.read_bytes(),
                       headers={"content-type": "image/jpeg"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    onnx_answer = r.json()
    torch_answer = client.post("/v1/detect?imgsz=64", content=SAMPLE.read_bytes(),
                               headers={"content-type": "image/jpeg"}).json()
    assert onnx_answer["model"]["backend"] == "onnxruntime" and torch_answer["model"]["backend"] == "torch"
    assert keys(onnx_answer["energy"]) == keys(torch_answer["energy"])
    assert onnx_answer["energy"]["snn_mJ"] > 0
