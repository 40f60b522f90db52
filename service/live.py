"""The browser view of the live demo (``spikedet webcam``): the latest annotated frame of a :class:`FrameHub`
as a FastAPI app.

``GET /`` (or ``/index.html``) is the page, whose image is ``GET /stream`` (an MJPEG stream:
``multipart/x-mixed-replace`` JPEG parts, a part per new frame, the closing boundary when the hub closes; at
most :data:`MAX_VIEWERS` at once, 503 past them); ``GET /frame.jpg`` is the latest frame (503 before the
first) and ``GET /stats`` the running numbers as JSON. Errors are JSON ``{"error": "..."}``.
"""

from __future__ import annotations

import html
import threading

import anyio
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from spikedet.service import errors
from spikedet.service.errors import ApiError
from spikedet.service.state import finite

BOUNDARY = "spikedetframe"
MAX_VIEWERS = 8
NO_STORE = {"Cache-Control": "no-store"}


class FrameHub:
    """The latest JPEG frame, handed to every viewer of the MJPEG stream."""

    def __init__(self):
        self._cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.seq = 0
        self.closed = False
        self.viewers = 0
        self.stats: dict = {}

    def publish(self, jpeg: bytes, stats: dict | None = None) -> None:
        with self._cond:
            self.jpeg, self.seq = jpeg, self.seq + 1
            if stats is not None:
                self.stats = stats
            self._cond.notify_all()

    def wait(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """``(seq, jpeg)`` once a frame newer than ``after`` is published, the hub closes or ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > after or self.closed, timeout)
            return self.seq, self.jpeg

    def join(self) -> bool:
        """Count a new viewer of the stream; False (not counted) when :data:`MAX_VIEWERS` already watch."""
        with self._cond:
            if self.viewers >= MAX_VIEWERS:
                return False
            self.viewers += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self.viewers -= 1

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _page(title: str) -> str:
    t = html.escape(title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spikedet live: {t}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{margin:0;background:#111;color:#eee;font:15px system-ui,sans-serif}}
h1{{font-size:17px;font-weight:600;margin:10px 16px}}main{{display:flex;gap:16px;padding:0 16px;flex-wrap:wrap}}
img{{max-width:min(98vw,1100px);max-height:86vh;border:1px solid #333}}
#stats{{min-width:220px;background:#1b1b1b;border:1px solid #333;border-radius:8px;padding:12px 16px}}
#stats dt{{color:#aaa;font-size:13px;margin-top:10px}}#stats dd{{margin:0;font-size:22px;font-variant-numeric:tabular-nums}}
p{{color:#aaa;margin:8px 16px}}</style></head>
<body><h1>spikedet live &mdash; {t}</h1>
<main><img src="/stream" alt="annotated video stream">
<section id="stats" aria-live="polite"><dl>
<dt>frames per second</dt><dd id="fps">&ndash;</dd>
<dt>energy per frame (SNN, compute only)</dt><dd id="snn">&ndash;</dd>
<dt>same frame on the ANN</dt><dd id="ann">&ndash;</dd>
<dt>objects in this frame</dt><dd id="objects">&ndash;</dd>
<dt>frames so far</dt><dd id="frames">&ndash;</dd></dl></section></main>
<p>Boxes are drawn as <code>spikedet predict</code> draws them; FPS and energy sit below the picture. Energy is
the field's compute-only estimate (45 nm: an addition per spike vs a multiply-add per ANN operation).</p>
<script>
const mj = v => (typeof v === "number" ? v.toFixed(2) + " mJ" : "\u2013");
async function poll() {{
  try {{
    const s = await (await fetch("/stats", {{cache: "no-store"}})).json();
    const last = s.last || {{}};
    document.getElementById("fps").textContent = typeof s.fps === "number" ? s.fps.toFixed(1) : "\u2013";
    document.getElementById("snn").textContent = mj(last.snn_mJ);
    document.getElementById("ann").textContent = mj(last.ann_mJ);
    document.getElementById("objects").textContent = last.detections ?? "\u2013";
    document.getElementById("frames").textContent = s.frames ?? "\u2013";
  }} catch (e) {{}}
}}
poll(); setInterval(poll, 500);
</script>
</body></html>"""


async def _parts(hub: FrameHub):
    """The stream's body: a part for each frame newer than the last one sent, the closing boundary at the end."""
    sent = 0
    while True:
        seq, jpeg = await anyio.to_thread.run_sync(hub.wait, sent)
        if jpeg is not None and seq > sent:
            sent = seq
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                   + jpeg + b"\r\n")
        if hub.closed:
            yield f"--{BOUNDARY}--\r\n".encode()
            return


class _Stream(StreamingResponse):
    """The MJPEG stream of one viewer, who leaves the hub when the response ends however it ends."""

    def __init__(self, hub: FrameHub):
        super().__init__(_parts(hub), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                         headers={**NO_STORE, "Connection": "close"})
        self.hub = hub

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.leave()


def create_live_app(hub: FrameHub, title: str = "spikedet") -> FastAPI:
    """The live view of ``hub``'s frames; ``title`` (the source) is shown on the page."""
    app = FastAPI(title="spikedet live", docs_url=None, redoc_url=None, openapi_url=None)
    errors.install(app)
    page = _page(title)

    @app.get("/")
    @app.get("/index.html")
    async def index():
        return HTMLResponse(page, headers=NO_STORE)

    @app.get("/frame.jpg")
    async def frame():
        jpeg = hub.jpeg
        if jpeg is None:
            raise ApiError(503, "no frame yet", NO_STORE)
        return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)

    @app.get("/stats")
    async def stats():
        return JSONResponse(finite(hub.stats), headers=NO_STORE)  # JSON has no inf or NaN

    @app.get("/stream")
    async def stream():
        if not hub.join():
            raise ApiError(503, "too many viewers", NO_STORE)
        return _Stream(hub)

    return app
