"""`spikedet webcam` (spikedet/webcam/run.py): annotated video file, live MJPEG view, bounded runs, on a short
video made from the coco8 images with the tiny converted model."""

from __future__ import annotations

import threading

import cv2
import httpx
import numpy as np
import pytest

from tests.support.video import SIZE, frames_of


def test_run_writes_an_annotated_video(detector, video, tmp_path):
    from spikedet.webcam import run

    out = tmp_path / "out.mp4"
    stats = run(detector, str(video), output=out, max_frames=5, imgsz=160)
    assert stats.frames == 5 and stats.output == str(out)
    assert stats.mean_snn_mJ > 0 and stats.mean_ann_mJ > stats.mean_snn_mJ and stats.fps > 0
    written = frames_of(out)
    assert len(written) == 5 and written[0].shape[1] == SIZE[0] and written[0].shape[0] > SIZE[1]
    source = frames_of(video)
    # the stats (FPS, energy) sit in a strip below the picture; the picture's top-left corner is the source's
    # unless a box is drawn there
    for a, b in zip(written, source):
        strip = a[SIZE[1]:]
        assert strip.std() > 10  # text on the strip
        assert a[: SIZE[1]].shape == b.shape


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
        assert 'id="stats"' in page.text and all(f'id="{k}"' in page.text for k in ("fps", "snn", "objects"))
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
        assert all(f is not None and f.shape[1] == SIZE[0] and f.shape[0] > SIZE[1] for f in frames)  # + stats strip
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
