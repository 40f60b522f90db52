"""`spikedet webcam`: annotated video file, live MJPEG view, bounded runs and one-line errors, on a short video
made from the coco8 images with the tiny converted model."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.support.service import tiny_weights

ROOT = Path(__file__).resolve().parents[1]
SIZE = (320, 240)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.getbasetemp() / "spikedet-tiny.safetensors")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """An 8-frame 320x240 video of the coco8 images (mp4v)."""
    path = tmp_path_factory.mktemp("video") / "coco8.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, SIZE)
    assert writer.isOpened()
    images = sorted((ROOT / "data" / "coco8" / "images").glob("*/*.jpg"))
    assert len(images) == 8
    for image in images:
        writer.write(cv2.resize(cv2.imread(str(image)), SIZE))
    writer.release()
    return path


@pytest.fixture(scope="module")
def detector(tiny):
    from spikedet.detector import Detector

    return Detector(tiny, imgsz=160)


def frames_of(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_annotate_draws_boxes_fps_and_energy():
    from spikedet.webcam import annotate

    frame = np.zeros((240, 320, 3), np.uint8)
    result = {"detections": [{"class_id": 0, "name": "person", "confidence": 0.9,
                              "box": {"x1": 100, "y1": 100, "x2": 200, "y2": 200}}],
              "energy": {"snn_mJ": 1.25, "ann_mJ": 5.0, "efficiency": 4.0}}
    annotate(frame, result, fps=12.5)
    assert frame[150, 100].any() and frame[150, 200].any()  # the box's left and right edges
    assert frame[5:40, 5:200].any()  # the FPS / energy text at the top left
    assert not frame[150, 150].any()  # inside the box is untouched


def test_run_writes_an_annotated_video(detector, video, tmp_path):
    from spikedet.webcam import run

    out = tmp_path / "out.mp4"
    stats = run(detector, str(video), output=out, max_frames=5, imgsz=160)
    assert stats.frames == 5 and stats.output == str(out)
    assert stats.mean_snn_mJ > 0 and stats.mean_ann_mJ > stats.mean_snn_mJ and stats.fps > 0
    written = frames_of(out)
    assert len(written) == 5 and written[0].shape == (SIZE[1], SIZE[0], 3)
    source = frames_of(video)
    # the overlay (FPS, energy) changed the top-left corner of every frame
    for a, b in zip(written, source):
        assert np.abs(a[:30, :150].astype(int) - b[:30, :150].astype(int)).mean() > 10


def test_run_stops_at_the_end_of_the_file(detector, video, tmp_path):
    from spikedet.webcam import run

    assert run(detector, str(video), output=tmp_path / "all.avi", imgsz=160).frames == 8
    assert len(frames_of(tmp_path / "all.avi")) == 8


def test_live_view_streams_mjpeg(detector, video):
    from spikedet.webcam import BOUNDARY, run

    started = threading.Event()
    stop = threading.Event()
    box: dict = {}

    def on_start(stats):
        box["url"] = stats.url
        started.set()

    worker = threading.Thread(target=lambda: box.setdefault("stats", run(
        detector, str(video), port=0, max_frames=200, imgsz=160, loop=True, stop=stop, on_start=on_start)))
    worker.start()
    try:
        assert started.wait(30)
        url = box["url"]
        assert url.startswith("http://127.0.0.1:")
        page = httpx.get(url)
        assert page.status_code == 200 and '<img src="/stream"' in page.text
        jpegs = []
        with httpx.stream("GET", url + "stream", timeout=30) as r:
            assert r.headers["content-type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
            buffer = b""
            for chunk in r.iter_bytes():
                buffer += chunk
                while True:
                    start = buffer.find(b"\xff\xd8")
                    end = buffer.find(b"\xff\xd9", start + 2)
                    if start < 0 or end < 0:
                        break
                    jpegs.append(buffer[start:end + 2])
                    buffer = buffer[end + 2:]
                if len(jpegs) >= 3:
                    break
        frames = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]
        assert len(frames) >= 3
        assert all(f is not None and f.shape == (SIZE[1], SIZE[0], 3) for f in frames)
        assert httpx.get(url + "frame.jpg").headers["content-type"] == "image/jpeg"
        assert httpx.get(url + "stats").json()["frames"] >= 1
        assert httpx.get(url + "nope").status_code == 404
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    assert 3 <= box["stats"].frames < 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(box["url"], timeout=2)  # the view closes with the run


def test_cli_writes_a_bounded_video(tiny, video, tmp_path, capsys):
    from spikedet.cli.main import main

    out = tmp_path / "cli.mp4"
    code = main(["webcam", "--source", str(video), "--output", str(out), "--frames", "3", "--weights", str(tiny),
                 "imgsz=160"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "3 frames" in captured.out and str(out) in captured.out
    assert len(frames_of(out)) == 3


@pytest.mark.parametrize("source, needle", [
    ("missing.mp4", "not found"),
    ("not-a-video.mp4", "cannot open"),
    ("97", "cannot open camera 97"),
])
def test_cli_unopenable_source_is_one_line(tiny, tmp_path, capfd, source, needle, monkeypatch):
    from spikedet.cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-video.mp4").write_text("this is text, not a video\n")
    code = main(["webcam", "--source", source, "--frames", "1", "--weights", str(tiny), "--port", "0"])
    err = capfd.readouterr().err.strip()  # file-descriptor level: OpenCV's own messages would show here
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err, err


def test_cli_bad_output_is_one_line(tiny, video, capsys):
    from spikedet.cli.main import main

    assert main(["webcam", str(video), "--output", "out.gif", "--weights", str(tiny)]) == 2
    assert "output must be" in capsys.readouterr().err
