"""Test helpers for the service: a free port, ``spikedet serve`` in a subprocess, a tiny converted checkpoint
(random weights: it detects nothing useful, but runs the real pipeline) and a fake detector. A server in a
thread of the test process is the production :class:`spikedet.service.server.BackgroundServer`.
Test code only: it is not shipped in the wheel (``benchmarks/`` use it from a checkout).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tiny_weights(path: str | Path, model: str = "spikeyolo-t.yaml") -> Path:
    """Write a converted (spike-mode) random-init model to ``path`` (.safetensors) unless it exists."""
    path = Path(path)
    if not path.is_file():
        from spikedet.convert.bitplane import spiking
        from spikedet.io.weights import save_model
        from spikedet.model.detection import SpikeDetectionModel

        module = spiking(SpikeDetectionModel(model, verbose=False).eval())
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(module, path)
    return path


def wait_ready(url: str, timeout: float = 120.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``url/readyz`` until it answers 200 (raises TimeoutError, or RuntimeError if the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def server_process(weights: str | Path | None, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                   host: str = "127.0.0.1", port: int | None = None, ready_timeout: float = 180.0,
                   log_path: str | Path | None = None):
    """``spikedet serve`` in a subprocess (default weights when ``weights`` is None); yields ``(url, process)``
    once /readyz answers 200."""
    port = port or free_port(host)
    full_env = {**os.environ, "SPIKEDET_LOG_LEVEL": "warning", **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    chosen = () if weights is None else ("--weights", str(weights))
    cmd = [sys.executable, "-m", "spikedet", "serve", *chosen, "--host", host, "--port", str(port), *args]
    process = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    try:
        wait_ready(url, ready_timeout, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log_path:
            log.close()


class FakeResult:
    def __init__(self, width: int, height: int, detections: list[dict]):
        self.width, self.height, self.detections = width, height, detections

    def to_dict(self, layers: bool = False) -> dict:
        energy = {"image": None, "snn_mJ": 1.5, "ann_mJ": 6.0, "ann_merged_mJ": 9.0, "efficiency": 4.0,
                  "macs": 1e9, "acs": 5e8, "spikes": 1e6, "counting": "auto",
                  "constants": {"e_mac_pj": 4.6, "e_ac_pj": 0.9, "process": "45 nm", "source": "test"},
                  "caveat": "Compute energy only (fake detector for tests)."}
        if layers:
            energy["layers"] = [{"name": "model.0", "energy_mJ": 1.5}]
        return {"image": {"width": self.width, "height": self.height}, "detections": self.detections,
                "energy": energy, "timing_ms": {"preprocess": 0.1, "inference": 1.0, "postprocess": 0.1, "total": 1.2},
                "model": {"weights": "fake"}}


class FakeDetector:
    """Stands in for :class:`spikedet.detector.Detector` where a test checks the service, not the model:
    it answers one fixed box (class 0, ``person``) scaled to each image, after ``delay`` seconds."""

    def __init__(self, settings=None, delay: float = 0.0):
        self.delay = delay

    def info(self) -> dict:
        return {"weights": "fake", "architecture": "fake", "scale": None, "classes": 1, "names": {0: "person"}}

    def detect(self, image, conf: float = 0.25, iou: float = 0.7, imgsz: int | None = None) -> FakeResult:
        if self.delay:
            time.sleep(self.delay)
        h, w = image.shape[:2]
        box = {"x1": round(w * 0.2, 1), "y1": round(h * 0.25, 1), "x2": round(w * 0.6, 1), "y2": round(h * 0.8, 1)}
        detections = [{"class_id": 0, "name": "person", "confidence": 0.9, "box": box}] if conf < 0.9 else []
        return FakeResult(w, h, detections)


def worker_pids(process) -> set[int]:
    """The pids of a ``spikedet serve --processes N`` server's worker processes (children started by spawn)."""
    import psutil

    pids = set()
    for child in psutil.Process(process.pid).children():
        with contextlib.suppress(psutil.Error):  # a killed worker is a zombie until the supervisor reaps it
            if "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
    return pids


def kill_workers(process) -> tuple[set[int], float]:
    """SIGKILL every worker process of a ``--processes N`` server: their pids and the moment they were killed."""
    import signal

    pids = worker_pids(process)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids, time.monotonic()


def seconds_until_ok(url: str, since: float, limit: float) -> float | None:
    """Seconds from ``since`` until GET ``url`` answers 200 (polled), or None when it has not within ``limit``."""
    while time.monotonic() - since < limit:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - since
        time.sleep(0.05)
    return None
