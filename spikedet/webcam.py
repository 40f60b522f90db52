"""Live detection demo: frames from a camera, a video file or a stream, annotated with boxes, FPS and the
energy of each frame, shown in the browser (an MJPEG stream on loopback) and/or written to a video file.

    >>> from spikedet.detector import Detector
    >>> from spikedet.webcam import run
    >>> run(Detector("best.safetensors"), "clip.mp4", output="out.mp4", max_frames=100)   # doctest: +SKIP

OpenCV here is the headless build: no windows. The browser view is a page at ``http://HOST:PORT/`` whose
image is ``/stream`` (``multipart/x-mixed-replace`` JPEG parts); ``/frame.jpg`` is the latest frame and
``/stats`` the running numbers as JSON.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from spikedet.errors import SpikedetError

BOUNDARY = "spikedetframe"
MAX_VIEWERS = 8


@dataclass
class WebcamStats:
    source: str
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    mean_snn_mJ: float | None = None
    mean_ann_mJ: float | None = None
    detections: int = 0
    output: str | None = None
    url: str | None = None
    last: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# -- capture ---------------------------------------------------------------------------------------

def parse_source(source: str | int) -> str | int:
    """A camera index (``0``), a stream URL or a video file path; a missing file is a one-line error."""
    if isinstance(source, int):
        return source
    text = str(source).strip()
    if text.isdigit():
        return int(text)
    if "://" in text:
        return text
    if not Path(text).expanduser().is_file():
        raise SpikedetError(f"video source {text!r} not found (give a camera index, a video file or a stream URL)")
    return str(Path(text).expanduser())


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV (and FFmpeg inside it) print their own messages when a source cannot be opened; the caller
    reports the failure in one line. Both OpenCV's log and the process's stderr (fd 2) are muted meanwhile."""
    log = cv2.utils.logging
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, closed): nothing to mute
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        log.setLogLevel(previous)


def _is_file(target: str | int) -> bool:
    """A parsed source that is a video file (not a camera index, not a stream URL)."""
    return isinstance(target, str) and "://" not in target


def open_capture(source: str | int) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` that has delivered a first frame, or :class:`SpikedetError`."""
    target = parse_source(source)
    what = f"camera {target}" if isinstance(target, int) else f"video source {target!r}"
    with _quiet_opencv():
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            capture.release()
            raise SpikedetError(f"cannot open {what}")
        ok, _ = capture.read()
    if not ok:
        capture.release()
        raise SpikedetError(f"{what} opened but gives no frames")
    if _is_file(target):
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a file: start again from its first frame
    return capture


# -- drawing ---------------------------------------------------------------------------------------

def _color(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _label(frame: np.ndarray, text: str, x: int, y: int, color, scale: float, thickness: int) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = max(y, h + base + 2)
    cv2.rectangle(frame, (x, y - h - base - 2), (x + w + 4, y), color, -1)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(frame, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv2.LINE_AA)


def annotate(frame: np.ndarray, result: dict, fps: float | None = None) -> np.ndarray:
    """Draw the boxes of ``result`` (``DetectionResult.to_dict()``), the FPS and the energy on ``frame``."""
    h, w = frame.shape[:2]
    scale = max(0.4, min(1.2, w / 1000))
    thick = max(1, round(scale * 2))
    for d in result.get("detections", []):
        b = d["box"]
        color = _color(int(d["class_id"]))
        p1, p2 = (int(b["x1"]), int(b["y1"])), (int(b["x2"]), int(b["y2"]))
        cv2.rectangle(frame, p1, p2, color, thick + 1)
        _label(frame, f"{d['name']} {d['confidence']:.2f}", p1[0], p1[1], color, scale * 0.8, thick)
    e = result.get("energy", {})
    lines = []
    if fps is not None:
        n = len(result.get("detections", []))
        lines.append(f"{fps:.1f} FPS  {n} object{'' if n == 1 else 's'}")
    if e:
        eff = e.get("efficiency")
        lines.append(f"SNN {e.get('snn_mJ', 0):.2f} mJ  ANN {e.get('ann_mJ', 0):.2f} mJ"
                     + (f"  {eff:.1f}x" if isinstance(eff, (int, float)) and math.isfinite(eff) else ""))
    y = 0
    for text in lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y += th + base + 8
        overlay = frame[max(0, y - th - base - 6):y + 2, 0:min(w, tw + 14)]
        overlay[:] = (overlay * 0.35).astype(np.uint8)  # darken behind the text
        cv2.putText(frame, text, (7, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame


# -- the browser view ------------------------------------------------------------------------------

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


# -- the loop --------------------------------------------------------------------------------------

_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".m4v": "mp4v", ".mkv": "mp4v"}


def check_output(path: str | Path) -> str:
    """The codec for an output video path, or :class:`SpikedetError` for a suffix or folder that cannot work."""
    path = Path(path)
    fourcc = _FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise SpikedetError(f"output must be a .mp4, .avi, .mov, .m4v or .mkv file, got {str(path)!r}")
    if not path.parent.is_dir():
        raise SpikedetError(f"output folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise SpikedetError(f"output {str(path)!r} is a folder")
    return fourcc


def open_writer(path: str | Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    fourcc = check_output(path)
    with _quiet_opencv():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise SpikedetError(f"cannot write video {str(path)!r} (codec {fourcc})")
    return writer


def run(
    detector,
    source: str | int = 0,
    output: str | Path | None = None,
    port: int | None = None,
    host: str = "127.0.0.1",
    max_frames: int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int | None = None,
    loop: bool = False,
    stop: threading.Event | None = None,
    on_start=None,
    log=None,
) -> WebcamStats:
    """Detect on every frame of ``source`` until it ends, ``max_frames`` frames, ``stop`` is set or Ctrl+C.

    ``output`` writes the annotated frames to a video file; ``port`` serves them live on ``host:port``
    (0 picks a free port). ``loop`` replays a video file from the start when it ends. ``on_start(stats)``
    is called once the source is open and the view (if any) listens; ``log(text)`` gets progress lines.
    """
    capture = open_capture(source)
    is_file = _is_file(parse_source(source))
    stats = WebcamStats(source=str(source))
    writer = view = None
    try:
        src_fps = capture.get(cv2.CAP_PROP_FPS)
        src_fps = src_fps if 0 < src_fps < 240 else 30.0
        if port is not None:
            view = LiveView(host, port, title=str(source))
            stats.url = view.url
        if on_start is not None:
            on_start(stats)
        snn = ann = 0.0
        fps = size = None
        start = last = time.perf_counter()
        while max_frames is None or stats.frames < max_frames:
            if stop is not None and stop.is_set():
                break
            ok, frame = capture.read()
            if not ok:
                if loop and is_file and stats.frames:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                break
            result = detector.detect(frame, conf=conf, iou=iou, imgsz=imgsz).to_dict()
            now = time.perf_counter()
            instant = 1.0 / max(now - last, 1e-6)
            fps = instant if fps is None else 0.9 * fps + 0.1 * instant
            last = now
            annotate(frame, result, fps)
            if size is None:
                size = (frame.shape[1], frame.shape[0])  # the video keeps the first frame's size
            if writer is None and output is not None:
                writer = open_writer(output, src_fps, size)
                stats.output = str(output)
            if writer is not None:
                writer.write(frame if (frame.shape[1], frame.shape[0]) == size else cv2.resize(frame, size))
            stats.frames += 1
            stats.detections += len(result["detections"])
            snn += result["energy"]["snn_mJ"]
            ann += result["energy"]["ann_mJ"]
            stats.last = {"detections": len(result["detections"]), "snn_mJ": result["energy"]["snn_mJ"],
                          "ann_mJ": result["energy"]["ann_mJ"], "timing_ms": result["timing_ms"]}
            stats.seconds = now - start
            stats.fps = stats.frames / stats.seconds if stats.seconds > 0 else 0.0
            stats.mean_snn_mJ, stats.mean_ann_mJ = snn / stats.frames, ann / stats.frames
            if view is not None:
                ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    view.hub.publish(jpeg.tobytes(), stats.as_dict())
                if is_file:  # a file plays no faster than its own frame rate in the browser
                    delay = 1.0 / src_fps - (time.perf_counter() - now)
                    if delay > 0:
                        time.sleep(delay)
            if log is not None and stats.frames % 30 == 0:
                log(f"{stats.frames} frames, {stats.fps:.1f} FPS, {stats.mean_snn_mJ:.2f} mJ/frame (SNN)")
    except KeyboardInterrupt:
        pass  # Ctrl+C ends the demo; the video file is still finalised below
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if view is not None:
            view.close()
    return stats

