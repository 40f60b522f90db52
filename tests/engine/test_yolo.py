"""SpikeYOLO: Ultralytics' Model API around spikedet's model; checkpoints reload through SpikeYOLO and plain YOLO."""

import json
import subprocess
import sys
import textwrap

from spikedet.engine.yolo import SpikeYOLO
from spikedet.model.detection import SpikeDetectionModel


def test_spikeyolo_wraps_the_model():
    model = SpikeYOLO("spikeyolo-t.yaml")
    assert isinstance(model.model, SpikeDetectionModel) and model.task == "detect"
    assert model.model.args["model"] == "spikeyolo-t.yaml"


def test_checkpoint_reloads_in_a_fresh_process_through_spikeyolo_and_plain_yolo(trained_checkpoint, coco8_val_images):
    assert trained_checkpoint.is_file()
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        images = sorted(str(p) for p in Path({str(coco8_val_images)!r}).glob("*.jpg"))
        if sys.argv[1] == "spikedet":
            from spikedet import SpikeYOLO
            model = SpikeYOLO({str(trained_checkpoint)!r})
        else:
            import spikedet  # the checkpoint pickles spikedet's classes; importing it is all YOLO needs
            from ultralytics import YOLO
            model = YOLO({str(trained_checkpoint)!r})
        out = []
        for r in model.predict(images, imgsz=160, conf=0.0001, max_det=20, verbose=False):
            out.append(r.boxes.data.tolist())
        print(json.dumps({{"type": type(model.model).__name__, "out": out}}))
        """
    )
    results = {}
    for loader in ("spikedet", "ultralytics"):
        proc = subprocess.run([sys.executable, "-c", code, loader], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[loader] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["spikedet"]["type"] == results["ultralytics"]["type"] == "SpikeDetectionModel"
    assert results["spikedet"]["out"] == results["ultralytics"]["out"]
    assert sum(len(o) for o in results["spikedet"]["out"]) > 0


def test_python_resolves_the_names_the_cli_resolves_from_any_folder(tmp_path, monkeypatch):
    """SpikeYOLO(name) and Detector(name) take what `spikedet ... model=name` takes: shipped weights by name or
    by their checkout path, model YAMLs with a scale, .safetensors; and ultralytics.YOLO takes a SpikeYOLO."""
    from ultralytics import YOLO

    from spikedet.assets import asset_dir
    from spikedet.detector import Detector
    from spikedet.engine.yolo import SpikeYOLO

    monkeypatch.chdir(tmp_path)
    shipped = asset_dir("weights") / "yolov5n-a2s.safetensors"
    for name in ("yolov5n-a2s.safetensors", "weights/yolov5n-a2s.safetensors", str(shipped)):
        assert SpikeYOLO(name).ckpt_path == str(shipped)
        assert Detector(name).weights == shipped
    assert SpikeYOLO("models/spikeyolo-t.yaml").model.yaml["scale"] == "t"
    assert Detector("spikeyolo-t.yaml").module.yaml["scale"] == "t"
    wrapped = YOLO(SpikeYOLO("yolov5n-a2s.safetensors"))
    assert wrapped.model.names[0] == "person" and wrapped.ckpt_path == str(shipped)
