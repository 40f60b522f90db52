"""`spikedet webcam` on a SpikeYOLO checkpoint (their .pt, no opt-in: it is a local command)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.video import frames_of


def test_webcam_runs_their_checkpoint_on_a_video(spikeyolo_tiny, video, tmp_path):
    out = tmp_path / "out.avi"
    proc = subprocess.run(
        [sys.executable, "-m", "spikedet", "webcam", str(video), "--weights", str(spikeyolo_tiny), "--output", str(out),
         "--frames", "3", "imgsz=64"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(frames_of(out)) == 3
