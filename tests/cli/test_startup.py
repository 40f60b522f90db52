"""`spikedet --help` and `spikedet COMMAND --help` start without importing torch or Ultralytics (they only
list settings; the pipelines load when a command runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
from spikedet.cli.main import main
code = main({argv!r})
heavy = sorted(m for m in ("torch", "ultralytics", "cv2") if m in sys.modules)
print("HEAVY", ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [["--help"], ["energy", "--help"], ["serve", "--help"], ["predict", "--help"],
                                  ["import-spikeyolo", "--help"], ["export", "--help"]])
def test_help_does_not_import_torch_or_ultralytics(argv):
    proc = subprocess.run([sys.executable, "-c", CHECK.format(argv=argv)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: spikedet" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY", proc.stdout.splitlines()[-1]


def test_a_bad_setting_is_still_one_line_before_anything_heavy_loads():
    proc = subprocess.run([sys.executable, "-c", CHECK.format(argv=["energy", "imgsz=33"])], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "imgsz" in proc.stderr
