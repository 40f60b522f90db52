"""Sources and the output video (spikedet/webcam/capture.py): a source that cannot be opened or an output
that cannot be written is one line from `spikedet webcam`."""

from __future__ import annotations

import pytest


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
