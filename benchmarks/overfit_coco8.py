"""Slow check: a SpikeYOLO trained with spikedet's pipeline overfits coco8 (train = val = all 8 images).

Proves the spiking network learns end to end through Ultralytics' trainer (loss, assigner, EMA, val):
it must reach mAP50 >= 0.5 on the images it was trained on, at imgsz 320. Augmentation is off (an overfit
check, not a recipe).

Usage: ``python benchmarks/overfit_coco8.py [--model spikeyolo-t.yaml] [--epochs 150] [--imgsz 320] [--device cpu]``
Prints the final metrics and ``mAP50 >= 0.5: yes|no``; exits 1 when not reached.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spikeyolo-t.yaml")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--project", default=None, help="keep the run here (default: a temporary folder)")
    args = parser.parse_args(argv)

    import yaml

    from spikedet import SpikeYOLO
    from spikedet.engine.coco import COCO80_NAMES

    coco8 = ROOT / "data" / "coco8" / "images"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "coco8-all.yaml"
        splits = [str(coco8 / "train"), str(coco8 / "val")]
        data.write_text(yaml.safe_dump({"train": splits, "val": splits, "names": dict(enumerate(COCO80_NAMES))}))
        model = SpikeYOLO(args.model)
        start = time.perf_counter()
        model.train(
            data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device=args.device, workers=0,
            project=args.project or tmp, name="overfit", exist_ok=True, seed=0, plots=False, val=True,
            # nbs = batch: an optimizer step every batch (Ultralytics otherwise accumulates up to 64 images)
            optimizer="AdamW", lr0=0.002, warmup_epochs=3, close_mosaic=0, patience=0, nbs=args.batch,
            mosaic=0.0, mixup=0.0, fliplr=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, scale=0.0, translate=0.0,
            erasing=0.0, auto_augment=None, cache=True,
        )
        minutes = (time.perf_counter() - start) / 60
        metrics = model.val(data=str(data), imgsz=args.imgsz, batch=args.batch, device=args.device, workers=0,
                            project=tmp, name="val", plots=False)
    map50, map5095 = float(metrics.box.map50), float(metrics.box.map)
    coco = getattr(metrics, "coco", {}) or {}
    print(f"{args.model}: {args.epochs} epochs at imgsz {args.imgsz} on {args.device} in {minutes:.1f} min")
    print(f"Ultralytics mAP50 {map50:.3f}  mAP50-95 {map5095:.3f};  pycocotools AP50 {coco.get('AP50', float('nan')):.3f}  "
          f"AP {coco.get('AP', float('nan')):.3f}")
    ok = map50 >= 0.5
    print(f"mAP50 >= 0.5: {'yes' if ok else 'no'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
