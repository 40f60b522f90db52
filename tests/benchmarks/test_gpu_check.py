"""benchmarks/gpu_check.py without a GPU: it says so and exits 0; gpu_check.sh without wheels: one line, exit 2.

The checks themselves run only on a GPU (``python benchmarks/gpu_check.py --smoke`` runs each of them on the CPU
at a tiny size, a few minutes: not part of the test suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_cuda_the_gpu_check_says_so_and_exits_0():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("CUDA is not available")
    assert "| check |" not in proc.stdout  # nothing measured


def test_the_gpu_runner_without_wheels_says_how_to_get_them(tmp_path):
    env = dict(os.environ, CARRY=str(tmp_path / "none"))
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"no wheels in {tmp_path / 'none'}/wheels/: run 'bash benchmarks/gpu_check.sh download' first"
    ]
