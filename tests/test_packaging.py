"""A non-editable wheel carries models/, data/, weights/ and the service page, and spikedet finds them there."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_assets_and_finds_them(tmp_path):
    dist = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(dist.glob("spikedet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "spikedet/models/spikeyolo.yaml",
        "spikedet/models/yolov5n.yaml",
        "spikedet/data/coco8.yaml",
        "spikedet/data/coco.yaml",
        "spikedet/data/coco8/images/val/000000000036.jpg",
        "spikedet/data/coco8/labels/val/000000000036.txt",
        "spikedet/weights/yolov5n-a2s.safetensors",
        "spikedet/weights/yolov5n-a2s-int8.safetensors",
        "spikedet/weights/README.md",
        "spikedet/service/static/index.html",
        "spikedet/service/app.py",
    ):
        assert expected in names, expected
    # every source module of the checkout is in the wheel (the package list in pyproject.toml is complete)
    sources = {"spikedet/" + str(p.relative_to(ROOT / "spikedet")) for p in (ROOT / "spikedet").rglob("*.py")}
    sources |= {"spikedet/service/" + str(p.relative_to(ROOT / "service")) for p in (ROOT / "service").rglob("*.py")}
    assert sources - names == set()

    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = (
        "import json, spikedet, spikedet.assets as a, spikedet.cli.main, spikedet.service.app;"
        "m = a.resolve_model_yaml('spikeyolo-s.yaml');"
        "print(json.dumps({'pkg': spikedet.__file__, 'models': str(a.asset_dir('models')), 'model': [str(m[0]), m[1]],"
        " 'data': a.resolve_data('coco8.yaml'), 'shipped_data': str(a.asset_dir('data')),"
        " 'weights': str(a.default_weights())}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPIKEDET_WEIGHTS"}
    env["PYTHONPATH"] = str(target)
    env["SPIKEDET_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    inside = str(target / "spikedet")
    assert found["pkg"].startswith(inside)  # the wheel's copy, not the source checkout
    assert found["models"] == str(target / "spikedet" / "models")
    assert found["model"] == [str(target / "spikedet" / "models" / "spikeyolo.yaml"), "s"]
    # the wheel's data, handed to Ultralytics from the user cache folder (label caches never go into the package)
    assert found["shipped_data"] == str(target / "spikedet" / "data")
    assert found["data"] == str(tmp_path / "cache" / "data" / "coco8.yaml")
    assert (tmp_path / "cache" / "data" / "coco8" / "images" / "val").is_dir()
    assert found["weights"] == str(target / "spikedet" / "weights" / "yolov5n-a2s-int8.safetensors")
