"""Training-step cost of a spiking SpikeYOLO against its ANN twin, measured in one run.

The ANN twin is the identical architecture with every spiking neuron replaced by ReLU. Both train on the same
real coco8 batch (Ultralytics' dataloader and loss) with SGD; each runs in its own subprocess so its peak
memory is its own. Reported: median time of one step (forward, loss, backward, optimizer step) and the peak
memory of a step (CUDA: the allocator's peak, AMP on; CPU: the process's peak resident set above the level
before the step, with glibc returning large blocks to the OS).

Usage: ``python benchmarks/train_step.py [--model spikeyolo-n.yaml] [--batch 4] [--imgsz 320] [--steps 5]
[--device cpu|cuda]``. Goals (issue 3): <= 1.10x time and <= 1.10x memory of the ANN twin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(args) -> dict:
    import torch
    from torch import nn
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    import spikedet  # noqa: F401
    from spikedet.model.detection import SpikeDetectionModel
    from spikedet.snn.neurons import SpikingNeuron

    torch.manual_seed(0)
    device = torch.device(args.device)
    data = check_det_dataset(str(ROOT / "data" / "coco8.yaml"))
    cfg = get_cfg(overrides={"imgsz": args.imgsz, "batch": args.batch})
    dataset = build_yolo_dataset(cfg, data["train"], args.batch, data, mode="val", rect=False, stride=32)
    batch = next(iter(build_dataloader(dataset, args.batch, 0, shuffle=False)))
    while batch["img"].shape[0] < args.batch:  # coco8 has 4 train images: repeat them for bigger batches
        batch = {k: (torch.cat([v, v]) if k == "img" else v) for k, v in batch.items()}
    batch["img"] = batch["img"][: args.batch].to(device).float() / 255
    for k in ("cls", "bboxes", "batch_idx"):
        batch[k] = batch[k].to(device)

    model = SpikeDetectionModel(args.model, nc=80, verbose=False)
    if args.variant == "ann":
        for name, m in list(model.named_modules()):
            if isinstance(m, SpikingNeuron):
                parent, _, child_name = name.rpartition(".")
                setattr(model.get_submodule(parent), child_name, nn.ReLU())
    model.args = cfg
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(enabled=amp)

    def step():
        with torch.autocast(device.type, enabled=amp):
            loss, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss.sum()).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(2):  # warm-up (allocator pools, lazy init, cudnn autotune)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status("VmRSS")
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() - base if device.type == "cuda" else _status("VmHWM") - base
    return {"time": statistics.median(times), "peak": peak}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spikeyolo-n.yaml")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variant", choices=("snn", "ann"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(child(args)))
        return
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")
    results = {}
    for variant in ("ann", "snn"):
        cmd = [sys.executable, __file__, "--variant", variant, "--model", args.model, "--batch", str(args.batch),
               "--imgsz", str(args.imgsz), "--steps", str(args.steps), "--device", args.device]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    import torch

    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"{args.model}, batch {args.batch}, imgsz {args.imgsz}, device {args.device} ({name}), "
          f"{'AMP' if args.device.startswith('cuda') else 'fp32'}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print()
    print("| | ANN twin (ReLU) | spikedet (IBRA-LIF) | ratio | goal |")
    print("|---|---|---|---|---|")
    a, s = results["ann"], results["snn"]
    print(f"| training step time | {a['time'] * 1e3:.0f} ms | {s['time'] * 1e3:.0f} ms | {s['time'] / a['time']:.2f}x | <= 1.10x |")
    print(f"| peak memory of a step | {a['peak'] / 2**20:.0f} MiB | {s['peak'] / 2**20:.0f} MiB | {s['peak'] / a['peak']:.2f}x | <= 1.10x |")


if __name__ == "__main__":
    main()
