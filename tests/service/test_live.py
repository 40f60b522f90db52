"""The live view's app (service/live.py) on its own, fed by hand: the page, the latest frame, the stats, the
MJPEG stream (a part per new frame, the closing boundary when the hub closes), the viewer cap, JSON errors."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from spikedet.service.live import BOUNDARY, MAX_VIEWERS, FrameHub, create_live_app
from spikedet.service.server import BackgroundServer
from tests.service.common import assert_error

FRAME_A = b"\xff\xd8 frame A \xff\xd9"
FRAME_B = b"\xff\xd8 frame B \xff\xd9"
CLOSING = f"--{BOUNDARY}--\r\n".encode()


def part(jpeg: bytes) -> bytes:
    return f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n"


def wait_for_no_viewers(hub: FrameHub, timeout: float = 10) -> None:
    """A viewer leaves the hub once its response has ended, which the client may see a moment before."""
    deadline = time.monotonic() + timeout
    while hub.viewers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.viewers == 0


def read_until(chunks, buffer: bytes, end: bytes) -> bytes:
    while not buffer.endswith(end):
        buffer += next(chunks)
    return buffer


@pytest.fixture
def live():
    hub = FrameHub()
    server = BackgroundServer(create_live_app(hub, title="<clip> & 'more'"))
    with server as url:
        yield hub, url
        hub.close()


def test_page_frame_stats_and_errors(live):
    hub, url = live
    page = httpx.get(url + "/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<img src="/stream"' in page.text and "&lt;clip&gt; &amp; &#x27;more&#x27;" in page.text
    assert "<clip>" not in page.text
    assert httpx.get(url + "/index.html").text == page.text
    assert assert_error(httpx.get(url + "/frame.jpg"), 503) == "no frame yet"
    hub.publish(FRAME_A, {"frames": 1, "fps": 12.5, "mean_snn_mJ": float("inf")})
    r = httpx.get(url + "/frame.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content == FRAME_A
    assert r.headers["cache-control"] == "no-store"
    assert httpx.get(url + "/stats").json() == {"frames": 1, "fps": 12.5, "mean_snn_mJ": None}
    assert assert_error(httpx.get(url + "/nope"), 404) == "not found: /nope"
    assert_error(httpx.post(url + "/stats"), 405)


def test_stream_sends_new_frames_only_and_ends_when_the_hub_closes(live):
    hub, url = live
    hub.publish(FRAME_A)
    with httpx.stream("GET", url + "/stream", timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        chunks = r.iter_bytes()
        assert read_until(chunks, b"", part(FRAME_A)) == part(FRAME_A)  # the latest frame at once
        time.sleep(1.3)  # longer than the hub's wait: no frame is sent again meanwhile
        hub.publish(FRAME_B)
        hub.close()
        rest = b"".join(chunks)
    assert rest == part(FRAME_B) + CLOSING
    wait_for_no_viewers(hub)


def test_viewers_are_capped(live):
    hub, url = live
    hub.publish(FRAME_A)
    with contextlib.ExitStack() as stack:
        for _ in range(MAX_VIEWERS):
            r = stack.enter_context(httpx.stream("GET", url + "/stream", timeout=10))
            assert r.status_code == 200
            read_until(r.iter_bytes(), b"", part(FRAME_A))
        assert hub.viewers == MAX_VIEWERS
        assert assert_error(httpx.get(url + "/stream"), 503) == "too many viewers"
    wait_for_no_viewers(hub)  # the viewers hung up: their places are free again
    with httpx.stream("GET", url + "/stream", timeout=10) as r:
        assert r.status_code == 200
        hub.close()
        assert b"".join(r.iter_bytes()) == part(FRAME_A) + CLOSING
