"""``spikedet import-spikeyolo``: their checkpoint -> spikedet weights, with the equality report; one-line refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import torch


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spikedet", "import-spikeyolo", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_import_writes_weights_and_reports_equality_with_their_outputs(spikeyolo_tiny, spikeyolo_tiny_reference, tmp_path):
    out = tmp_path / "tiny.safetensors"
    proc = _run(spikeyolo_tiny, "-o", out, f"reference={spikeyolo_tiny_reference}", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["output"] == str(out) and report["neuron"]["type"] == "ILIF"
    assert report["read"]["parameters"] == 843_480 and report["read"]["width"] == 0.0625
    assert report["reference"]["equal"]
    assert {x: v["spike_mismatches"] for x, v in report["reference"]["inputs"].items()} == {"bus": 0, "rand": 0}

    from spikedet.io.spikeyolo_check import compare_with_reference
    from spikedet.io.weights import load_model, read_config

    assert read_config(out)["extra"]["imported_from"]["format"] == "spikeyolo"
    assert compare_with_reference(load_model(out), spikeyolo_tiny_reference)["equal"]  # the written file too

    text = _run(spikeyolo_tiny, "-o", tmp_path / "again.safetensors", f"reference={spikeyolo_tiny_reference}")
    assert text.returncode == 0 and "0 spike mismatches in 88 neuron layers" in text.stdout
    assert "equal to SpikeYOLO's own outputs: yes" in text.stdout


def test_import_can_switch_to_ibra_lif(spikeyolo_tiny, tmp_path):
    out = tmp_path / "ibra.safetensors"
    proc = _run(spikeyolo_tiny, "-o", out, "neuron=IBRALIF", "D=2.55", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["neuron"] == {"type": "IBRALIF", "D": 2.55, "N": 100, "T": 1, "alpha": 0.25}
    from spikedet.io.weights import load_model

    neurons = [n for _, n in load_model(out).neurons()]
    assert {(type(n).__name__, n.L) for n in neurons} == {("IBRALIF", 255)}


def test_import_refuses_what_it_cannot_read_in_one_line(tmp_path, spikeyolo_tiny):
    plain = tmp_path / "plain.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, plain)
    for args, words in (((plain,), "not a SpikeYOLO checkpoint"), ((tmp_path / "missing.pt",), "not found"),
                        ((spikeyolo_tiny, "D=2"), "add neuron=IBRALIF"),
                        ((spikeyolo_tiny, "-o", tmp_path / "x.pt"), "must be a .safetensors")):
        proc = _run(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr[-500:])
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "plain.safetensors").exists()


def test_import_says_a_corrupt_checkpoint_or_a_malformed_reference_in_one_line(tmp_path, spikeyolo_tiny):
    import zipfile

    from safetensors.torch import save_file

    broken = tmp_path / "broken.pt"  # a tensor record missing, as in a truncated copy
    with zipfile.ZipFile(spikeyolo_tiny) as z, zipfile.ZipFile(broken, "w") as out:
        names = z.namelist()
        dropped = next(n for n in names if "/data/" in n)
        for n in names:
            if n != dropped:
                out.writestr(n, z.read(n))
    no_output = tmp_path / "no-output.safetensors"
    save_file({"a.input": torch.zeros(1, 3, 64, 64)}, str(no_output))
    unknown = tmp_path / "unknown-layer.safetensors"
    save_file({"a.input": torch.zeros(1, 3, 64, 64), "a.output": torch.zeros(1, 84, 84),
               "a.spike.model.99.lif": torch.zeros(1)}, str(unknown))
    for args, words in (((broken,), "cannot load"), ((spikeyolo_tiny, f"reference={no_output}"), "a.output"),
                        ((spikeyolo_tiny, f"reference={unknown}"), "unknown neuron layer")):
        proc = _run(*args, "-o", tmp_path / "x.safetensors", cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr[-800:])
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "x.safetensors").exists()
