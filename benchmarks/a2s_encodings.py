"""ANN-to-SNN conversion of YOLOv5n: accuracy and energy of each spike encoding, in one run.

For every configuration: convert the ANN (``weights/yolov5n.pt``) with calibration on training images,
validate on an image folder with YOLO labels (pycocotools AP on ground truth built from the labels; imgsz 640,
rect letterbox, conf 0.001, NMS IoU 0.6, as for the ANN), and measure energy with spikedet's energy API on
the same images (``snn_mJ / ann_mJ`` summed over images, and the mean number of spikes per input element).

Usage::

    python benchmarks/a2s_encodings.py VAL_IMAGES CALIB_IMAGES [--configs name,name] [--energy-images 32]

e.g. ``VAL_IMAGES=/work/shared/data/coco128/images/val2017``, ``CALIB_IMAGES=.../coco128/images/train2017``
(calibration never sees the validation images). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    # name: (description, A2SConfig kwargs)
    "shift-0.3": ("binary codes, zero code 0.3*N (the feasibility point)", dict(encoding="binary", n=100, zero=0.3, rest="zero")),
    "shift-pow2": ("binary codes, zero code a power of two (one set bit)", dict(encoding="binary", n=100, zero="pow2", rest="zero")),
    "signed-N100": ("two trains (sign + magnitude bits), N=100", dict(encoding="signed", n=100, rest="zero")),
    "naf-N100": ("NAF ternary digits, N=100", dict(encoding="naf", n=100, rest="zero")),
    "naf-N50": ("NAF ternary digits, N=50", dict(encoding="naf", n=50, rest="zero")),
    "naf-N32": ("NAF ternary digits, N=32", dict(encoding="naf", n=32, rest="zero")),
    "naf-N20": ("NAF ternary digits, N=20", dict(encoding="naf", n=20, rest="zero")),
    "naf-N16": ("NAF ternary digits, N=16", dict(encoding="naf", n=16, rest="zero")),
    "naf-N10": ("NAF ternary digits, N=10", dict(encoding="naf", n=10, rest="zero")),
    "naf-8bit": ("NAF ternary digits, per-layer N for 8-bit codes", dict(encoding="naf", bits=8, rest="zero")),
    "naf-7bit": ("NAF ternary digits, per-layer N for 7-bit codes", dict(encoding="naf", bits=7, rest="zero")),
    "naf-6bit": ("NAF ternary digits, per-layer N for 6-bit codes", dict(encoding="naf", bits=6, rest="zero")),
    "naf-5bit": ("NAF ternary digits, per-layer N for 5-bit codes", dict(encoding="naf", bits=5, rest="zero")),
    "signed-6bit": ("two trains, per-layer N for 6-bit codes", dict(encoding="signed", bits=6, rest="zero")),
    "naf-N10-rest": ("NAF, N=10, the most frequent code sends nothing", dict(encoding="naf", n=10, rest="mode")),
    "naf-N16-rest": ("NAF, N=16, the most frequent code sends nothing", dict(encoding="naf", n=16, rest="mode")),
    "naf-N20-rest": ("NAF, N=20, the most frequent code sends nothing", dict(encoding="naf", n=20, rest="mode")),
    "naf-N32-rest": ("NAF, N=32, the most frequent code sends nothing", dict(encoding="naf", n=32, rest="mode")),
    "signed-N10-rest": ("two trains, N=10, the most frequent code sends nothing", dict(encoding="signed", n=10, rest="mode")),
    "naf-6bit-rest": ("NAF, per-layer 6-bit codes, the most frequent code sends nothing", dict(encoding="naf", bits=6, rest="mode")),
    "binary-6bit-min": ("binary codes, minimal zero code, per-layer 6-bit", dict(encoding="binary", bits=6, rest="zero")),
}


def evaluate(model, val_images: Path, names, imgsz: int, batch: int) -> dict:
    from spikedet.engine.val import SpikeDetectionValidator
    from spikedet.io.datasets import folder_dataset

    with folder_dataset(val_images, names) as data, tempfile.TemporaryDirectory() as tmp:
        args = dict(task="detect", mode="val", data=str(data), imgsz=imgsz, batch=batch, conf=0.001, iou=0.6, rect=True,
                    device="cpu", workers=0, plots=False, verbose=False, project=tmp, name="v", exist_ok=True)
        validator = SpikeDetectionValidator(args=args)
        validator(model=model)
        return {"AP": validator.coco_stats["AP"], "AP50": validator.coco_stats["AP50"],
                "map": float(validator.metrics.box.map), "map50": float(validator.metrics.box.map50)}


def measure_energy(snn, files: list[str], imgsz: int) -> dict:
    from spikedet.convert.bitplane import spiking
    from spikedet.engine.yolo import SpikeYOLO
    from spikedet.measure import energy

    detector = SpikeYOLO(ROOT / "weights" / "yolov5n.pt")  # a YOLO wrapper whose network is replaced by the SNN
    detector.model = spiking(snn, "integer")
    snn_mj = ann_mj = spikes = elements = 0.0
    with energy.measure(detector.model) as recorder:
        for file, _ in detector.predict_files(files, imgsz=imgsz, conf=0.25):  # each image on its own, as spikedet energy
            report = recorder.next_report(None, file)
            snn_mj += report.snn_mJ
            ann_mj += report.ann_mJ
            for layer in report.layers:
                if layer.input != "real":
                    spikes += layer.spikes
                    elements += layer.input_elements
    return {"energy_ratio": snn_mj / ann_mj, "snn_mJ": snn_mj / len(files), "ann_mJ": ann_mj / len(files),
            "spikes_per_element": spikes / elements}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("val_images")
    parser.add_argument("calib_images")
    parser.add_argument("--weights", default=str(ROOT / "weights" / "yolov5n.pt"))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--calib", type=int, default=32, help="calibration images")
    parser.add_argument("--energy-images", type=int, default=32)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)

    import spikedet  # noqa: F401
    from spikedet.convert import a2s
    from spikedet.io.images import image_files, load_batch
    from spikedet.io.yolov5 import load_yolov5_checkpoint

    val = Path(args.val_images)
    ann = load_yolov5_checkpoint(args.weights).eval().reparameterize()
    names = [ann.names[i] for i in range(len(ann.names))]
    calib, _ = load_batch(args.calib_images, args.imgsz, args.calib)
    stats = a2s.calibrate(ann, calib)
    files = [str(f) for f in image_files(val)][: args.energy_images]

    rows = []
    t = time.perf_counter()
    base = evaluate(ann, val, names, args.imgsz, args.batch)
    rows.append({"name": "ANN (YOLOv5n)", "desc": "SiLU, float", **base, "energy_ratio": 1.0, "spikes_per_element": float("nan"),
                 "seconds": time.perf_counter() - t})
    print(f"ANN: AP {base['AP']:.4f} AP50 {base['AP50']:.4f}", file=sys.stderr, flush=True)
    for name in args.configs.split(","):
        desc, kwargs = CONFIGS[name]
        t = time.perf_counter()
        snn = a2s.convert_ann(ann, stats, a2s.A2SConfig(**kwargs), calib[:1])
        acc = evaluate(snn, val, names, args.imgsz, args.batch)
        en = measure_energy(copy.deepcopy(snn), files, args.imgsz)
        row = {"name": name, "desc": desc, **acc, **en, "seconds": time.perf_counter() - t}
        rows.append(row)
        print(f"{name}: AP {acc['AP']:.4f} ({acc['AP'] / base['AP']:.3f}x) energy {en['energy_ratio']:.3f}x "
              f"spikes/elem {en['spikes_per_element']:.2f}", file=sys.stderr, flush=True)
    print()
    print("| encoding | AP (pycocotools) | AP50 | accuracy ratio | energy ratio SNN/ANN | mean spikes per element |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["AP"] / base["AP"]
        spe = "—" if r["spikes_per_element"] != r["spikes_per_element"] else f"{r['spikes_per_element']:.2f}"
        print(f"| {r['name']}: {r['desc']} | {100 * r['AP']:.1f} | {100 * r['AP50']:.1f} | {ratio:.3f}x | {r['energy_ratio']:.3f}x | {spe} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
