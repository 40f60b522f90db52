"""spikedet on a GPU, in one run (sized for about 4 minutes on one GPU; not yet timed on one):
one table of what training and inference cost there
and whether the GPU computes what the CPU does.

Rows (each measured in this run; ratios against a baseline measured in the same run):

1. training step time and peak memory of spikeyolo-n and spikeyolo-s (640, batch 16, AMP) against their ANN twins
   (every neuron replaced by ReLU; benchmarks/train_step.py), goal <= 1.10x;
2. neuron forward + backward, eager and ``torch.compile``d, against ReLU (benchmarks/neuron.py);
3. a 3-epoch AMP training run of spikeyolo-n on coco128 (``../shared/data/coco128`` when present, else the 64 of its
   images that gpu_check.sh carries, else the shipped coco8), whose training loss must fall; its final validation
   is float32 (spikedet's rule);
4. batch-1 inference latency at 640 of the trained model's ANN twin, integer path and bit-plane path;
5. agreement of the converted (integer) model's neuron codes between the CPU and CUDA (with CUDA's TF32
   convolutions on, PyTorch's default, and off);
6. the share of neuron codes that flip when the float model runs under float16 (and bfloat16) autocast;
7. Ultralytics' DDP launch on the GPUs there are: ``device=0,1,...`` re-launched under torchrun (world size = GPU
   count); with one GPU, the launcher's generated script under torchrun (world size 1: no DDP wrap).

Without CUDA it says so and exits 0. A row whose check breaks reads FAILED with the error; the exit code is then 1.

Usage: ``python benchmarks/gpu_check.py [--skip-compile] [--smoke]`` (``--smoke``: every check on the CPU at a tiny
size, to test this script without a GPU). On a bare GPU machine (its own torch, no Ultralytics):
``bash benchmarks/gpu_check.sh`` installs the wheels carried in ``.gpu_carry/wheels`` offline and runs this script
(``bash benchmarks/gpu_check.sh download`` fills ``.gpu_carry`` here first; see that script for what and why).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_COCO128 = ROOT.parent / "shared" / "data" / "coco128"
CARRIED_COCO128 = ROOT / ".gpu_carry" / "coco128"  # what gpu_check.sh download copies from SHARED_COCO128


@dataclass(frozen=True)
class Plan:
    """Where and at what size the checks run: the GPU plan, or a tiny CPU one that only smoke-tests this script."""

    device: str = "cuda"
    imgsz: int = 640
    batch: int = 16
    steps: int = 10
    repeats: int = 20

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()


GPU = Plan()
SMOKE = Plan(device="cpu", imgsz=64, batch=2, steps=1, repeats=1)


class Table:
    """The rows of the report; a check that raises becomes a FAILED row."""

    def __init__(self):
        self.rows: list[tuple[str, ...]] = []
        self.failed = 0

    def add(self, check: str, measured: str, baseline: str = "", ratio: str = "", goal: str = "", ok: str = ""):
        self.rows.append((check, measured, baseline, ratio, goal, ok))
        print(f"  {check}: {measured} {baseline} {ratio} {ok}".rstrip(), flush=True)

    @contextlib.contextmanager
    def section(self, name: str):
        start = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        try:
            yield
        except Exception as e:  # noqa: BLE001  (one broken check must not hide the others)
            self.failed += 1
            traceback.print_exc()
            self.add(name, f"FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200])
        print(f"[{name}] {time.perf_counter() - start:.0f} s", flush=True)

    def print(self) -> None:
        print()
        print("| check | measured | baseline | ratio | goal | met |")
        print("|---|---|---|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


def _ratio(ours: float, base: float, goal: float | None) -> tuple[str, str, str]:
    r = ours / base
    return f"{r:.2f}x", (f"<= {goal:.2f}x" if goal else ""), ("" if goal is None else "yes" if r <= goal else "NO")


def training_steps(table: Table, plan: Plan) -> None:
    """Row 1: spikeyolo-n and -s against their ANN twins, in this process (CUDA's allocator peak is per model)."""
    import torch
    import train_step

    for scale in ("n", "s"):
        result = {}
        for variant in ("ann", "snn"):
            args = argparse.Namespace(model=f"spikeyolo-{scale}.yaml", batch=plan.batch, imgsz=plan.imgsz,
                                      steps=plan.steps, device=plan.device, variant=variant)
            result[variant] = train_step.child(args)
            gc.collect()
            if plan.cuda:
                torch.cuda.empty_cache()
        a, s = result["ann"], result["snn"]
        table.add(f"spikeyolo-{scale} training step ({plan.imgsz}, batch {plan.batch}, AMP {'on' if plan.cuda else 'off'})",
                  f"{s['time'] * 1e3:.1f} ms",
                  f"ANN twin {a['time'] * 1e3:.1f} ms", *_ratio(s["time"], a["time"], 1.10))
        table.add(f"spikeyolo-{scale} peak memory of a step", f"{s['peak'] / 2**30:.2f} GiB",
                  f"ANN twin {a['peak'] / 2**30:.2f} GiB", *_ratio(s["peak"], a["peak"], 1.10))


def neuron_cost(table: Table, plan: Plan, compiled: bool) -> None:
    """Row 2: IBRA-LIF forward + backward against ReLU on [1, 8, 128, 80, 80], eager and compiled."""
    import neuron as neuron_bench
    import torch

    from spikedet.snn.neurons import IBRALIF

    device = torch.device(plan.device)
    relu, ibra = neuron_bench.ReLUT().to(device), IBRALIF(D=5.11, N=100, T=1).to(device)
    x = (torch.randn(neuron_bench.SHAPE, device=device) * 2).requires_grad_(True)
    t_relu, t_ibra = neuron_bench.time_fwd_bwd([relu, ibra], x, device, repeats=plan.repeats)
    table.add("neuron fwd+bwd, eager", f"{t_ibra * 1e3:.3f} ms", f"ReLU {t_relu * 1e3:.3f} ms", *_ratio(t_ibra, t_relu, 2.5))
    if compiled:
        c_relu, c_ibra = torch.compile(relu), torch.compile(ibra)
        t_relu, t_ibra = neuron_bench.time_fwd_bwd([c_relu, c_ibra], x, device, repeats=plan.repeats, warmup=3)
        table.add("neuron fwd+bwd, torch.compile", f"{t_ibra * 1e3:.3f} ms", f"ReLU {t_relu * 1e3:.3f} ms",
                  *_ratio(t_ibra, t_relu, 1.5))


def training_run(table: Table, plan: Plan, project: Path) -> Path:
    """Row 3: 3 epochs of AMP training; returns the best checkpoint."""
    import csv

    from spikedet import SpikeYOLO

    data, name, batch = _training_data(project, plan.batch)
    model = SpikeYOLO("spikeyolo-n.yaml")
    start = time.perf_counter()
    # AdamW at 0.002 as benchmarks/overfit_coco8.py (Ultralytics' 'auto' picks lr 0.000119 for so few steps);
    # nbs=batch: an optimizer step every batch; val=False: only the final epoch validates (in float32)
    model.train(data=data, epochs=3, imgsz=plan.imgsz, batch=batch, nbs=batch, device=0 if plan.cuda else "cpu",
                amp=True, optimizer="AdamW", lr0=0.002, warmup_epochs=1, workers=4, seed=0, project=str(project),
                name="train", exist_ok=True, plots=False, val=False, verbose=False)
    minutes = (time.perf_counter() - start) / 60
    with open(project / "train" / "results.csv") as f:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(f)]
    losses = [sum(float(r[k]) for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss")) for r in rows]
    amp = "on" if model.trainer.amp else "OFF (self-check failed)" if plan.cuda else "off (CPU)"
    metrics = model.trainer.metrics or {}
    table.add(f"3-epoch training, {name}, batch {batch}, AMP {amp}",
              "train loss " + " -> ".join(f"{v:.2f}" for v in losses),
              f"{minutes:.1f} min; float32 val mAP50 {float(metrics.get('metrics/mAP50(B)', 0)):.3f}",
              "", "loss falls", "yes" if losses[-1] < losses[0] else "NO")
    best = project / "train" / "weights" / "best.pt"
    return best if best.is_file() else project / "train" / "weights" / "last.pt"


def _training_data(project: Path, batch: int) -> tuple[str, str, int]:
    """(data YAML, its description, batch): coco128 from ../shared, else the 64 of its images that
    gpu_check.sh carries, else all 8 coco8 images (train = val: images that travel with the checkout)."""
    import shutil

    import yaml

    names = yaml.safe_load((ROOT / "data" / "coco8.yaml").read_text())["names"]
    for root, label in ((SHARED_COCO128, "coco128"), (CARRIED_COCO128, "coco128, the 64 carried images")):
        images = root / "images" / "train2017"
        if images.is_dir():
            copy = project / "coco128"  # a copy: Ultralytics writes its label cache beside the labels
            shutil.copytree(images, copy / "images" / "train2017")
            shutil.copytree(root / "labels" / "train2017", copy / "labels" / "train2017")
            splits = str(copy / "images" / "train2017")
            break
    else:
        shutil.copytree(ROOT / "data" / "coco8", project / "coco8")
        splits = [str(project / "coco8" / "images" / s) for s in ("train", "val")]
        label, batch = "coco8 (no coco128 here), its 8 images", min(batch, 8)
    path = project / "train-data.yaml"
    path.write_text(yaml.safe_dump({"train": splits, "val": splits, "names": names}))
    return str(path), label, batch


@functools.lru_cache(maxsize=1)
def _models(weights: Path | None, imgsz: int):
    """The float model (trained if ``weights``), its ANN twin, its converted copy and 4 coco8 images, on the CPU."""
    import copy

    import inference as inference_bench
    import torch

    from spikedet.convert import bitplane
    from spikedet.io.images import load_batch, sample_images
    from spikedet.io.weights import load_model
    from spikedet.nn.mode import is_reparameterized

    model = load_model(weights if weights else "spikeyolo-n.yaml", allow_pickle=True).float().eval()
    images, _ = load_batch(sample_images("val"), imgsz, 4)
    reparameterized = copy.deepcopy(model)
    if not is_reparameterized(reparameterized):
        reparameterized.reparameterize()
    with torch.no_grad():
        converted = bitplane.convert(model, images[:1])
    return model, inference_bench.ann_twin(reparameterized), converted, images


def inference(table: Table, plan: Plan, weights: Path | None) -> None:
    """Row 4: batch-1 latency of the ANN twin, the integer path and the bit-plane path."""
    import copy

    import inference as inference_bench
    import torch

    from spikedet.nn.mode import set_spike_mode

    _, twin, converted, images = _models(weights, plan.imgsz)
    image = images[:1].to(plan.device)
    twin, converted = copy.deepcopy(twin).to(plan.device), copy.deepcopy(converted).to(plan.device)

    def timed(fn, repeats):
        def synced():
            fn()
            plan.sync()

        return inference_bench.timed(synced, repeats, warmup=3)

    with torch.inference_mode():
        t_ann = timed(lambda: twin(image), plan.repeats * 2)
        set_spike_mode(converted, "integer")
        t_int = timed(lambda: converted(image), plan.repeats * 2)
        set_spike_mode(converted, "bitplane")
        t_bit = timed(lambda: converted(image), plan.repeats)
    table.add(f"inference batch 1 @{plan.imgsz}: integer path", f"{t_int * 1e3:.2f} ms", f"ANN twin {t_ann * 1e3:.2f} ms",
              *_ratio(t_int, t_ann, 1.10))
    table.add(f"inference batch 1 @{plan.imgsz}: bit-plane path", f"{t_bit * 1e3:.2f} ms", f"ANN twin {t_ann * 1e3:.2f} ms",
              *_ratio(t_bit, t_ann, None))


def _codes(model, images):
    """Every neuron's codes for ``images`` (hooks on the neurons' inputs), in model order."""
    import torch

    from spikedet.snn.neurons import SpikingNeuron

    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(m.codes_of(a[0].float()).cpu()))
             for m in model.modules() if isinstance(m, SpikingNeuron)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _differ(a: list, b: list) -> float:
    return sum(int((x != y).sum()) for x, y in zip(a, b)) / sum(x.numel() for x in a)


def code_agreement(table: Table, plan: Plan, weights: Path | None) -> None:
    """Row 5: the converted model's codes on the CPU and on CUDA (TF32 convolutions on and off)."""
    import copy

    import torch

    _, _, converted, images = _models(weights, plan.imgsz)
    cpu = _codes(converted, images)  # the converted model is in spike mode (integer path)
    gpu_model, gpu_images = copy.deepcopy(converted).to(plan.device), images.to(plan.device)
    tf32 = torch.backends.cudnn.allow_tf32
    try:
        for allow in (True, False):
            torch.backends.cudnn.allow_tf32 = allow
            flips = _differ(cpu, _codes(gpu_model, gpu_images))
            table.add(f"integer model codes, CPU vs CUDA (TF32 convs {'on' if allow else 'off'})",
                      f"{1 - flips:.4%} equal", f"{sum(c.numel() for c in cpu):,} codes, 4 images", "", "", "")
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def autocast_flips(table: Table, plan: Plan, weights: Path | None) -> None:
    """Row 6: codes of the float model in float32 against float16 / bfloat16 autocast."""
    import copy

    import torch

    model, _, _, images = _models(weights, plan.imgsz)
    model, images = copy.deepcopy(model).to(plan.device), images.to(plan.device)
    reference = _codes(model, images)
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast(plan.device, dtype=dtype), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".* merges this neuron's codes")  # measured here
            flips = _differ(reference, _codes(model, images))
        table.add(f"codes flipped under {str(dtype).removeprefix('torch.')} autocast (float model)", f"{flips:.2%}",
                  "float32", "", "", "")


def ddp_launch(table: Table, plan: Plan, project: Path) -> None:
    """Row 7: Ultralytics' DDP launcher on every GPU here (a 1-epoch training on coco8; the smoke plan: one CPU
    process through the one-GPU path)."""
    import torch

    count = torch.cuda.device_count() if plan.cuda else 1
    devices = ",".join(str(i) for i in range(count)) if plan.cuda else "cpu"
    script = (
        "import sys\nfrom spikedet import SpikeYOLO\n"
        f"m = SpikeYOLO('spikeyolo-n.yaml')\n"
        f"m.train(data={str(ROOT / 'data' / 'coco8.yaml')!r}, epochs=1, imgsz=320, batch={8 * count}, device={devices!r},"
        f" workers=2, project={str(project)!r}, name='ddp', exist_ok=True, plots=False, val=False, verbose=False)\n"
    )
    if count == 1:
        # One GPU: Ultralytics does not re-launch; run the command its launcher would run (torchrun over its
        # generated script, which rebuilds spikedet's trainer) with one process.
        script = (
            "import subprocess, sys\n"
            "from ultralytics.utils.dist import ddp_cleanup, generate_ddp_command\n"
            "from spikedet.engine.train import SpikeDetectionTrainer\n"
            f"t = SpikeDetectionTrainer(overrides=dict(model='spikeyolo-n.yaml', data={str(ROOT / 'data' / 'coco8.yaml')!r},"
            f" epochs=1, imgsz={min(plan.imgsz, 320)}, batch=8, device={devices!r}, workers=2, project={str(project)!r},"
            " name='ddp', exist_ok=True,"
            " plots=False, val=False))\n"
            "t.world_size = 1\n"
            "cmd, file = generate_ddp_command(t)\n"
            "code = subprocess.run(cmd).returncode\n"
            "ddp_cleanup(t, file)\n"
            "sys.exit(code)\n"
        )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(log[-4000:])
    ok = proc.returncode == 0 and (project / "ddp" / "weights" / "last.pt").is_file()
    table.add(f"Ultralytics DDP launch, world size {count}", "trained 1 epoch" if ok else f"exit {proc.returncode}",
              f"{seconds:.0f} s, devices {devices}", "", "runs", "yes" if ok else "NO")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-compile", action="store_true", help="leave out the torch.compile row")
    parser.add_argument("--smoke", action="store_true",
                        help="run every check on the CPU at a tiny size (tests this script, measures nothing)")
    args = parser.parse_args(argv)

    import torch

    if not args.smoke and not torch.cuda.is_available():
        print(f"CUDA is not available (torch {torch.__version__}): nothing to check here; run this on a GPU machine.")
        return 0
    plan = SMOKE if args.smoke else GPU
    os.environ.setdefault("YOLO_VERBOSE", "False")
    sys.path.insert(0, str(ROOT / "benchmarks"))  # train_step, neuron and inference are reused as modules
    import ultralytics

    import spikedet  # noqa: F401  (offline switches before Ultralytics does anything)

    where = (f"GPU {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, CUDA {torch.version.cuda}"
             if plan.cuda else "CPU smoke run (nothing measured)")
    print(f"{where}, torch {torch.__version__}, Ultralytics {ultralytics.__version__}", flush=True)
    table, start = Table(), time.perf_counter()
    weights = None
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        with table.section("training steps"):
            training_steps(table, plan)
        with table.section("neuron"):
            neuron_cost(table, plan, compiled=not args.skip_compile)
        with table.section("3-epoch training"):
            weights = training_run(table, plan, project)
        with table.section("inference"):
            inference(table, plan, weights)
        with table.section("CPU vs CUDA codes"):
            code_agreement(table, plan, weights)
        with table.section("autocast flips"):
            autocast_flips(table, plan, weights)
        with table.section("DDP launch"):
            ddp_launch(table, plan, project)
    print(f"\nspikedet GPU check: {where}, torch {torch.__version__}, {(time.perf_counter() - start) / 60:.1f} min")
    table.print()
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
