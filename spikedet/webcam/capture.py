"""Video in and out for the live demo: a camera index, a video file or a stream URL; an annotated video file."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import cv2

from spikedet.errors import SpikedetError
from spikedet.io.outputs import output_file


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


def is_video_file(target: str | int) -> bool:
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
    if is_video_file(target):
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a file: start again from its first frame
    return capture


_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".m4v": "mp4v", ".mkv": "mp4v"}


def check_output(path: str | Path) -> str:
    """The codec for an output video path, or :class:`SpikedetError` for a suffix or folder that cannot work."""
    path = output_file(path, tuple(_FOURCC), existing_folder=True)
    return _FOURCC[path.suffix.lower()]


def open_writer(path: str | Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    fourcc = check_output(path)
    with _quiet_opencv():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise SpikedetError(f"cannot write video {str(path)!r} (codec {fourcc})")
    return writer
