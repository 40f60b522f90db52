"""Training precision on the CPU: spikeyolo-t trained the same steps in float32, under bfloat16 autocast and under
float16 autocast, then measured in float32.

Ultralytics' AMP refuses bfloat16 on the CPU (and keeps AMP off there), so this runs a small loop of its own:
one fixed batch of all 8 coco8 images (train + val, no augmentation), Ultralytics' loss, AdamW, the same seed, the
same initial weights and the same steps for every precision; only the autocast dtype differs (float16 with a
gradient scaler). Each trained model is then measured in float32: mAP on the same 8 images (an overfit check,
spikedet's validator), and the share of neuron codes that flip when its forward pass runs under float16 or
bfloat16 autocast instead (what validating it under AMP would change).

Usage: ``python benchmarks/precision.py [--steps 120] [--imgsz 96] [--precisions float32,bfloat16[,float16]]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from copy import deepcopy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"float32": None, "bfloat16": "bfloat16", "float16": "float16"}


def coco8_all(tmp: Path) -> Path:
    """A data YAML whose train and val are all 8 coco8 images (a copy of the shipped ones: Ultralytics writes label
    caches beside the labels)."""
    import shutil

    import yaml

    shutil.copytree(ROOT / "data" / "coco8", tmp / "coco8")
    images = tmp / "coco8" / "images"
    spec = yaml.safe_load((ROOT / "data" / "coco8.yaml").read_text())
    data = tmp / "coco8-all.yaml"
    splits = [str(images / "train"), str(images / "val")]
    data.write_text(yaml.safe_dump({"train": splits, "val": splits, "names": spec["names"]}))
    return data


def fixed_batch(data_yaml: Path, imgsz: int) -> dict:
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(data_yaml))
    cfg = get_cfg(overrides={"imgsz": imgsz, "batch": 8})
    dataset = build_yolo_dataset(cfg, data["train"], 8, data, mode="val", rect=False, stride=32)
    batch = next(iter(build_dataloader(dataset, 8, 0, shuffle=False)))
    batch["img"] = batch["img"].float() / 255
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def train(model, batch: dict, precision: str, steps: int) -> tuple[list[float], float]:
    """Losses of every step and the median step time."""
    import torch

    dtype = getattr(torch, DTYPES[precision]) if DTYPES[precision] else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=dtype is torch.float16)
    losses, times = [], []
    model.train()
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss.sum()).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)  # as Ultralytics' trainer
        scaler.step(optimizer)
        scaler.update()
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach().sum()))
    return losses, statistics.median(times)


def code_flips(model, images, dtype) -> float:
    """Share of neuron codes that differ between a float32 forward pass and one under ``dtype`` autocast."""
    import torch

    from spikedet.snn.neurons import SpikingNeuron

    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    runs: list[list] = [[], []]
    for run, autocast in zip(runs, (False, True)):
        hooks = [n.register_forward_pre_hook(lambda m, a, run=run: run.append(m.codes_of(a[0].float())))
                 for n in neurons]
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=autocast):
            model.eval()(images)
        for h in hooks:
            h.remove()
    differ = sum(int((a != b).sum()) for a, b in zip(*runs))
    return differ / sum(a.numel() for a in runs[0])


def eval_loss(model, batch: dict) -> float:
    """Ultralytics' loss of the model in evaluation mode (BatchNorm running statistics), in float32."""
    import torch

    with torch.no_grad():
        preds = model.eval()(batch["img"])
        return float(model.loss(batch, preds)[0].sum())


def mean_ap(model, data_yaml: Path, imgsz: int, tmp: Path) -> tuple[float, float]:
    """mAP50 and mAP50-95 from spikedet's validator (float32) on ``data_yaml``'s val images."""
    from spikedet.engine.yolo import SpikeYOLO

    yolo = SpikeYOLO("spikeyolo-t.yaml")
    yolo.model = model
    metrics = yolo.val(data=str(data_yaml), imgsz=imgsz, batch=8, workers=0, device="cpu", project=str(tmp),
                       name="val", exist_ok=True, plots=False, verbose=False)
    return float(metrics.box.map50), float(metrics.box.map)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--imgsz", type=int, default=96)
    parser.add_argument("--precisions", default="float32,bfloat16",
                        help="comma-separated, of float32, bfloat16, float16 (CPU float16 autocast trains ~10x slower)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    precisions = args.precisions.split(",")
    if unknown := set(precisions) - set(DTYPES):
        parser.error(f"unknown precision(s) {sorted(unknown)}: choose from {list(DTYPES)}")

    import torch
    from ultralytics.cfg import get_cfg

    import spikedet  # noqa: F401  (offline switches before Ultralytics)
    from spikedet.model.detection import SpikeDetectionModel

    warnings.filterwarnings("ignore", message=".* merges this neuron's codes")  # the rows below measure what it means
    torch.manual_seed(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_yaml = coco8_all(Path(tmp))
        batch = fixed_batch(data_yaml, args.imgsz)
        initial = SpikeDetectionModel("spikeyolo-t.yaml", nc=80, verbose=False)
        threads = torch.get_num_threads()
        for precision in precisions:
            model = deepcopy(initial)
            model.args = get_cfg(overrides={"imgsz": args.imgsz})
            losses, step = train(model, batch, precision, args.steps)
            evaluated = eval_loss(model, batch)
            map50, map5095 = mean_ap(model, data_yaml, args.imgsz, Path(tmp))
            torch.set_num_threads(threads)  # Ultralytics' CPU device selection sets its own thread count
            flips = {d: code_flips(model, batch["img"], getattr(torch, d)) for d in ("float16", "bfloat16")}
            rows.append((precision, losses, step, evaluated, map50, map5095, flips))
    last = max(1, args.steps // 10)
    print(f"spikeyolo-t (IBRA-LIF, 511 codes), coco8 all 8 images, imgsz {args.imgsz}, batch 8, {args.steps} AdamW "
          f"steps, seed {args.seed}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print()
    print(f"| training precision | first loss | final training loss (mean of last {last}) | loss in eval mode, float32 | "
          "mAP50 | mAP50-95 | codes flipped under float16 / bfloat16 autocast | step time |")
    print("|---|---|---|---|---|---|---|---|")
    for precision, losses, step, evaluated, map50, map5095, flips in rows:
        final = statistics.fmean(losses[-last:])
        print(f"| {precision} | {losses[0]:.2f} | {final:.3f} | {evaluated:.3f} | {map50:.3f} | {map5095:.3f} | "
              f"{flips['float16']:.1%} / {flips['bfloat16']:.1%} | {step * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
