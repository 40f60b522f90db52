"""The `spikedet serve` command (spikedet/cli/serve.py): bad start-up in one line; the shipped default weights."""

from __future__ import annotations

import socket

import httpx
import pytest
import torch

from spikedet.assets import asset_dir
from tests.service.common import SERVER_ENV
from tests.support.service import server_process


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


@pytest.mark.skipif(not (asset_dir("weights") / "yolov5n-a2s.safetensors").is_file(), reason="default weights not installed")
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
        assert body["model"]["weights"] == "yolov5n-a2s.safetensors"
        assert body["energy"]["snn_mJ"] < body["energy"]["ann_mJ"] and body["energy"]["efficiency"] > 1
