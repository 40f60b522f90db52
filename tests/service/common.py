"""What the tests of tests/service share: the test server's limits and environment, a sample image, images
made on the fly, and checks of HTTP answers (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
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


def jpeg_empty_scan(data: bytes) -> bytes:
    """A JPEG cut right after its first scan's header and closed with EOI: every marker is valid, no pixel."""
    sos = data.index(b"\xff\xda")
    return data[:sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")] + b"\xff\xd9"


def grey16_png(width: int = 64, height: int = 48) -> tuple[bytes, np.ndarray]:
    """A 16-bit grey PNG of a ramp over the whole 0..65535 range, and its values."""
    values = np.linspace(0, 65535, width * height).round().astype(np.uint16).reshape(height, width)
    return encode(Image.fromarray(values), "PNG"), values


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
