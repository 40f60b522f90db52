"""The browser view of the live demo: the latest annotated frame as an MJPEG stream on loopback."""

from __future__ import annotations

import html
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from spikedet.errors import SpikedetError

BOUNDARY = "spikedetframe"
MAX_VIEWERS = 8


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
        with self._cond:
            self._cond.wait_for(lambda: self.seq > after or self.closed, timeout)
            return self.seq, self.jpeg

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _page(title: str) -> bytes:
    t = html.escape(title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spikedet live: {t}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{margin:0;background:#111;color:#eee;font:15px system-ui,sans-serif;text-align:center}}
h1{{font-size:17px;font-weight:600;margin:10px}}img{{max-width:98vw;max-height:86vh;border:1px solid #333}}
p{{color:#aaa;margin:8px}}</style></head>
<body><h1>spikedet live &mdash; {t}</h1><img src="/stream" alt="annotated video stream">
<p>Boxes, FPS and the energy of each frame (SNN vs ANN, compute only) are drawn on the frames.</p>
</body></html>""".encode()


class _ViewHandler(BaseHTTPRequestHandler):
    hub: FrameHub
    title: str
    server_version = "spikedet-webcam"

    def log_message(self, format, *args):  # noqa: A002 -- quiet: the demo prints its own progress
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, _page(self.title), "text/html; charset=utf-8")
        elif path == "/frame.jpg":
            jpeg = self.hub.jpeg
            if jpeg is None:
                self._send(503, b'{"error": "no frame yet"}', "application/json")
            else:
                self._send(200, jpeg, "image/jpeg")
        elif path == "/stats":
            self._send(200, json.dumps(self.hub.stats).encode(), "application/json")
        elif path == "/stream":
            self._stream()
        else:
            self._send(404, json.dumps({"error": f"not found: {path}"}).encode(), "application/json")

    def _stream(self) -> None:
        hub = self.hub
        with hub._cond:
            if hub.viewers >= MAX_VIEWERS:
                busy = True
            else:
                busy, hub.viewers = False, hub.viewers + 1
        if busy:
            self._send(503, b'{"error": "too many viewers"}', "application/json")
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            seq = 0
            while True:
                seq, jpeg = hub.wait(seq)
                if jpeg is not None and seq:
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                     .encode() + jpeg + b"\r\n")
                    self.wfile.flush()
                if hub.closed:
                    self.wfile.write(f"--{BOUNDARY}--\r\n".encode())
                    break
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            with hub._cond:
                hub.viewers -= 1
            self.close_connection = True


class LiveView:
    """The loopback HTTP server of the browser view (a thread), serving one :class:`FrameHub`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8001, title: str = "spikedet"):
        self.hub = FrameHub()
        handler = type("Handler", (_ViewHandler,), {"hub": self.hub, "title": title})
        try:
            self.server = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise SpikedetError(f"cannot serve the live view on {host}:{port}: {e.strerror or e}") from None
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="spikedet-live-view", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def close(self) -> None:
        self.hub.close()
        self.server.shutdown()
        self.server.server_close()
