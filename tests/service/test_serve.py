"""The `spikedet serve` command (spikedet/cli/serve.py): bad start-up in one line; the shipped default weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

from spikedet.assets import asset_dir
from tests.service.common import SERVER_ENV
from tests.support.service import server_process, wait_ready


def test_serve_refuses_bad_start_up_in_one_line(tmp_path, capsys, tiny):
    from spikedet.cli.main import main

    pickle_file = tmp_path / "model.pt"
    pickle_file.write_bytes(b"x")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        for argv, needle in [
            (["serve", "--weights", str(tmp_path / "missing.safetensors")], "not found"),
            (["serve", "--weights", str(pickle_file)], "--allow-pickle"),
            (["serve", "--weights", str(tiny), "--port", str(busy.getsockname()[1])], "cannot listen"),
            (["serve", "--weights", str(tiny), "imgsz=100"], "multiple of 32"),
            (["serve", "--weights", str(tiny), "device=foo"], "unknown device"),
            *([(["serve", "--weights", str(tiny), "device=mps"], "MPS")] if not torch.backends.mps.is_available()
              else []),
        ]:
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and needle in err, err
    finally:
        busy.close()


@pytest.mark.skipif(not (asset_dir("weights") / "yolov5n-a2s-int8.safetensors").is_file(), reason="default weights not installed")
def test_default_weights_find_the_people_and_the_bus():
    """`spikedet serve` with no weights given answers bus.jpg with its people and its bus, and the energy."""
    from ultralytics.utils import ASSETS

    env = {k: v for k, v in SERVER_ENV.items() if not k.startswith("SPIKEDET_IMGSZ")}
    env["SPIKEDET_WEIGHTS"] = ""
    with server_process(None, env=env) as (url, _):
        with open(ASSETS / "bus.jpg", "rb") as f:
            r = httpx.post(url + "/v1/detect", files={"image": ("bus.jpg", f, "image/jpeg")}, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        names = [d["name"] for d in body["detections"]]
        assert names.count("person") >= 3 and "bus" in names, names
        assert body["model"]["weights"] == "yolov5n-a2s-int8.safetensors"
        assert body["model"]["state"] == "integer"  # the default is the bit-exact integer model
        assert body["energy"]["snn_mJ"] < body["energy"]["ann_mJ"] and body["energy"]["efficiency"] > 1


def broken_weights(tiny, path):
    """``tiny`` with one tensor left out: its header and config are valid (the start-up check passes), the
    load fails later, in the background."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- not a dict
    tensors.pop(max(tensors))
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("processes", [1, 2])
def test_weights_that_fail_to_load_after_start_up_end_the_process_with_exit_2(tiny, tmp_path, processes):
    weights = broken_weights(tiny, tmp_path / "broken.safetensors")
    env = {**os.environ, **SERVER_ENV, "SPIKEDET_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "spikedet", "serve", "--weights", str(weights), "--port", "0",
         "--processes", str(processes)], env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("spikedet serve: error:")]
    assert errors and all("does not match its model config" in line for line in errors), result.stderr
    assert len(errors) <= processes


def test_a_killed_worker_process_is_replaced_and_the_service_answers_again(tiny):
    """`--processes 2`: SIGKILL every worker; uvicorn's supervisor starts new ones and the service answers
    /healthz again within seconds, /readyz once their models are loaded."""
    from tests.support.service import kill_workers, seconds_until_ok, worker_pids

    with server_process(tiny, env=SERVER_ENV, args=("--processes", "2")) as (url, process):
        old, killed = kill_workers(process)
        assert len(old) == 2
        answered = seconds_until_ok(url + "/healthz", killed, 60)
        assert answered is not None and answered < 30, answered
        wait_ready(url, 120, process)
        deadline = time.monotonic() + 30  # /readyz answers once one replacement is up; the other may still start
        while len(new := worker_pids(process) - old) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        new = worker_pids(process)
        assert len(new) == 2 and not new & old
        assert process.poll() is None
