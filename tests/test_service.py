"""The HTTP service against real servers: `spikedet serve` in a subprocess (tiny converted model, small
limits) for the endpoints, the bad-input battery and the concurrency cap; uvicorn in a thread with a stand-in
detector where a test is about the service itself (readiness, API key, timeouts).

Sections mirror service/routes.py: health, model, detect, limits and errors, concurrency, auth, page and docs,
then settings and the `serve` command.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from spikedet.assets import asset_dir
from spikedet.service.app import create_app
from spikedet.service.settings import Settings, SettingsError
from tests.support.service import (
    FakeDetector,
    ThreadServer,
    server_process,
    tiny_weights,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "coco8" / "images" / "val" / "000000000036.jpg"
MAX_UPLOAD = 1_000_000
MAX_PIXELS = 4_000_000
CAP = 2
SERVER_ENV = {
    "SPIKEDET_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    "SPIKEDET_MAX_PIXELS": str(MAX_PIXELS),
    "SPIKEDET_MAX_CONCURRENCY": str(CAP),
    "SPIKEDET_IMGSZ": "160",
    "SPIKEDET_IMGSZ_MAX": "640",
    "SPIKEDET_UPLOAD_TIMEOUT_S": "10",
    "SPIKEDET_API_KEY": "",  # an empty variable is unset: no key
}


# -- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.getbasetemp() / "spikedet-tiny.safetensors")


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    """`spikedet serve` in a subprocess: yields (url, process)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with server_process(tiny, env=SERVER_ENV, log_path=log) as (url, process):
        yield url, process


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server[0], timeout=60) as c:
        yield c


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def small_image(w: int = 64, h: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR (correct CRC) claiming width x height, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"], body
    return body["error"]


def raw_http(url: str, head: bytes, body: bytes = b"", linger: float = 0.0, timeout: float = 20) -> bytes:
    """Send a hand-made request on a socket; return what the server answered before closing (or timeout)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if linger:
            time.sleep(linger)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                head_end = answer.find(b"\r\n\r\n")
                if head_end >= 0:  # stop at the end of the first response
                    length = [int(line.split(b":")[1]) for line in answer[:head_end].split(b"\r\n")
                              if line.lower().startswith(b"content-length:")]
                    if length and len(answer) >= head_end + 4 + length[0]:
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    return answer


def rss(process) -> int:
    import psutil

    return psutil.Process(process.pid).memory_info().rss


def healthy(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.post("/v1/detect", files={"image": ("ok.jpg", SAMPLE.read_bytes(), "image/jpeg")})
    assert r.status_code == 200, r.text[:300]


@pytest.fixture
def fake_app():
    """Factory of thread-served apps with the stand-in detector: ``with fake_app(**settings) as url``."""

    def make(factory=None, **overrides):
        settings = Settings(**{"imgsz": 160, **overrides})
        return ThreadServer(create_app(settings, factory or (lambda s: FakeDetector(s))))

    return make


def wait_status(url: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url + "/readyz")
        if status == "ready" and r.status_code == 200:
            return
        if status != "ready" and r.status_code == 503 and r.json().get("status") == status:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{url} never reached {status}")


# -- health ----------------------------------------------------------------------------------------

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
    with ThreadServer(create_app(Settings(weights=str(fake_pt)))) as url:
        wait_status(url, "failed")
        assert "pickle" in httpx.get(url + "/readyz").json()["error"]


# -- model -----------------------------------------------------------------------------------------

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


# -- detect ----------------------------------------------------------------------------------------

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


# -- limits and errors -----------------------------------------------------------------------------

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


def test_decoding_rejects_every_truncation_and_applies_exif_orientation():
    from spikedet.service.images import ImageRejected, decode

    for data in (SAMPLE.read_bytes(), encode(small_image(), "JPEG", progressive=True), encode(small_image(), "PNG")):
        assert decode(data + bytes(50), MAX_PIXELS).shape[2] == 3  # trailing bytes after the image are fine
        for cut in range(8, len(data) - 1, max(1, len(data) // 60)):
            with pytest.raises(ImageRejected) as e:
                decode(data[:cut], MAX_PIXELS)
            assert e.value.status == 400, (cut, e.value.message)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    for fmt in ("JPEG", "PNG"):
        assert decode(encode(small_image(64, 48), fmt, exif=exif), MAX_PIXELS).shape == (64, 48, 3)


def test_slow_or_stalled_upload_gets_408(fake_app):
    with fake_app(upload_timeout_s=0.5) as url:
        head = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n"
        answer = raw_http(url, head, b"\xff\xd8\xff" + bytes(100), timeout=10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert b'{"error":"upload not received within 0.5 s"}' in answer
        assert httpx.get(url + "/healthz").status_code == 200


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


# -- concurrency -----------------------------------------------------------------------------------

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


# -- auth ------------------------------------------------------------------------------------------

def test_api_key(fake_app):
    with fake_app(api_key="s3cret") as url:
        wait_status(url, "ready")
        png = encode(small_image(), "PNG")
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-Api-Key": "S3CRET"}):
            assert "API key" in assert_error(httpx.get(url + "/v1/model", headers=headers), 401)
            r = httpx.post(url + "/v1/detect", content=png, headers={"content-type": "image/png", **headers})
            assert_error(r, 401)
        ok = {"X-API-Key": "s3cret"}
        assert httpx.get(url + "/v1/model", headers=ok).status_code == 200
        r = httpx.post(url + "/v1/detect", content=png, headers={"content-type": "image/png", **ok})
        assert r.status_code == 200 and r.json()["detections"][0]["name"] == "person"
        # public: health, limits (which say a key is needed), the page
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/v1/limits").json()["api_key_required"] is True
        assert httpx.get(url + "/").status_code == 200


# -- page and docs ---------------------------------------------------------------------------------

def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert "/static/app.js" in page and "/static/style.css" in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200
        assert "https://" not in asset.text and "http://" not in asset.text
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")
    assert_error(client.get("/static/missing.js"), 404)


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    detect = spec["paths"]["/v1/detect"]["post"]
    assert "multipart/form-data" in detect["requestBody"]["content"]
    params = {p["name"]: p["schema"] for p in detect["parameters"]}
    assert params["imgsz"]["multipleOf"] == 32 and params["imgsz"]["maximum"] == 640
    assert params["conf"]["maximum"] == 1.0
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # swagger-ui-bundle is a dependency: the docs page is served locally, nothing from a CDN
    assert "/docs-assets/" in docs.text and "cdn.jsdelivr" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


# -- settings --------------------------------------------------------------------------------------

def test_settings_from_environment():
    s = Settings.from_env({"SPIKEDET_MAX_UPLOAD_BYTES": "2_000_000", "SPIKEDET_ALLOW_PICKLE": "yes",
                           "SPIKEDET_CONF": "0.4", "SPIKEDET_API_KEY": "k", "SPIKEDET_PORT": "",
                           "SPIKEDET_IMGSZ": "320"})
    assert s.max_upload_bytes == 2_000_000 and s.allow_pickle is True and s.conf == 0.4
    assert s.api_key == "k" and s.port == 8000 and s.imgsz == 320
    assert Settings.from_env({}, workers=3).workers == 3
    for env, needle in [
        ({"SPIKEDET_PORT": "eighty"}, "SPIKEDET_PORT must be an integer"),
        ({"SPIKEDET_ALLOW_PICKLE": "maybe"}, "SPIKEDET_ALLOW_PICKLE"),
        ({"SPIKEDET_IMGSZ": "100"}, "multiple of 32"),
        ({"SPIKEDET_MAX_CONCURRENCY": "0"}, "SPIKEDET_MAX_CONCURRENCY must be >= 1"),
        ({"SPIKEDET_CONF": "1.5"}, "SPIKEDET_CONF must be <= 1"),
        ({"SPIKEDET_IMGSZ": "1600"}, "SPIKEDET_IMGSZ_MAX"),
        ({"SPIKEDET_API_KEY": "clé"}, "SPIKEDET_API_KEY must be ASCII"),  # a header could never carry it
        ({"SPIKEDET_LOG_LEVEL": "loud"}, "trace"),
    ]:
        with pytest.raises(SettingsError, match=needle):
            Settings.from_env(env)


def test_every_setting_is_documented():
    from spikedet.service.settings import describe

    readme = (ROOT / "service" / "README.md").read_text()
    for name, _, help_text in describe():
        assert help_text
        assert name in readme, f"{name} missing from service/README.md"


# -- the serve command -----------------------------------------------------------------------------

def test_serve_refuses_bad_start_up_in_one_line(tmp_path, capsys, tiny):
    from spikedet.cli.main import main

    pickle_file = tmp_path / "model.pt"
    pickle_file.write_bytes(b"x")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        for argv, needle in [
            (["serve", "--weights", str(tmp_path / "missing.safetensors")], "not found"),
            (["serve", "--weights", str(pickle_file)], "--allow-pickle"),
            (["serve", "--weights", str(tiny), "--port", str(busy.getsockname()[1])], "cannot listen"),
            (["serve", "--weights", str(tiny), "imgsz=100"], "multiple of 32"),
        ]:
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and needle in err, err
    finally:
        busy.close()


@pytest.mark.skipif(not (asset_dir("weights") / "yolov5n-a2s.safetensors").is_file(), reason="default weights not installed")
def test_default_weights_find_the_people_and_the_bus():
    """`spikedet serve` with no weights given answers bus.jpg with its people and its bus, and the energy."""
    from ultralytics.utils import ASSETS

    env = {k: v for k, v in SERVER_ENV.items() if not k.startswith("SPIKEDET_IMGSZ")}
    env["SPIKEDET_WEIGHTS"] = ""
    with server_process(None, env=env) as (url, _):
        with open(ASSETS / "bus.jpg", "rb") as f:
            r = httpx.post(url + "/v1/detect", files={"image": ("bus.jpg", f, "image/jpeg")}, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        names = [d["name"] for d in body["detections"]]
        assert names.count("person") >= 3 and "bus" in names, names
        assert body["model"]["weights"] == "yolov5n-a2s.safetensors"
        assert body["energy"]["snn_mJ"] < body["energy"]["ann_mJ"] and body["energy"]["efficiency"] > 1
