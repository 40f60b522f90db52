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

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2

from spikedet.service.live import FrameHub, create_live_app
from spikedet.service.server import BackgroundServer
from spikedet.webcam.capture import is_video_file, open_capture, open_writer, parse_source
from spikedet.webcam.overlay import annotate


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
    is_file = is_video_file(parse_source(source))
    stats = WebcamStats(source=str(source))
    writer = view = None
    hub = FrameHub()
    try:
        src_fps = capture.get(cv2.CAP_PROP_FPS)
        src_fps = src_fps if 0 < src_fps < 240 else 30.0
        if port is not None:
            view = BackgroundServer(create_live_app(hub, title=str(source)), host, port).start()
            stats.url = view.url + "/"
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
            frame = annotate(frame, result, fps)
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
                    hub.publish(jpeg.tobytes(), stats.as_dict())
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
        hub.close()  # open streams end with their closing boundary
        if view is not None:
            view.stop()
    return stats

