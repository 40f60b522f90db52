"""spikedet info: JSON on stdout only, the papers' parameter counts."""

import json
import subprocess
import sys


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "spikedet", *args], capture_output=True, text=True, timeout=timeout)


def test_info_json_on_stdout_only():
    proc = run_cli("info", "spikeyolo-t.yaml", "imgsz=64", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["params"] == sum(layer["params"] for layer in report["layers"])
    assert report["macs"] > report["macs_unmerged"] > 0  # merged 3x3s cost more than the chains they replace
    assert report["scale"] == "t" and report["neuron"]["types"] == ["IBRALIF"] and report["neuron"]["L"] == 511


def test_info_paper_parameter_counts():
    """Parameter counts at nc=80 within 1% of the papers (13.2M / 23.1M / 48.1M / 68.8M)."""
    from spikedet.model.detection import SpikeDetectionModel

    for scale, paper in [("n", 13.2e6), ("s", 23.1e6), ("m", 48.1e6), ("l", 68.8e6)]:
        params = sum(p.numel() for p in SpikeDetectionModel(f"spikeyolo-{scale}.yaml", verbose=False).parameters())
        assert abs(params - paper) / paper < 0.01, (scale, params)
