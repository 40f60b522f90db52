"""DDP on CPU over gloo: two processes started by torchrun train spikeyolo-t on coco8 with spikedet's trainer
and end with the same parameters, each having trained on its own share of the images.

This covers spikedet's distributed code path as a user runs it (torchrun, ``WORLD_SIZE`` from the environment,
the process group, the DDP wrap, the sharded loader, gradient averaging, validation gathered on rank 0, the final
validation of best.pt); it does not cover NCCL, GPUs or several machines (benchmarks/gpu_check.py runs
Ultralytics' own launcher on the GPUs it finds).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

WORKER = textwrap.dedent(
    """
    import os
    import sys

    import torch
    from ultralytics.utils.torch_utils import unwrap_model

    from spikedet.engine.train import SpikeDetectionTrainer

    out, data, project = sys.argv[1:4]
    rank = int(os.environ["RANK"])
    record = {"shares": []}

    def parameters(trainer):
        return {n: p.detach().clone() for n, p in unwrap_model(trainer.model).named_parameters()}

    def on_train_start(trainer):
        record["initial"] = parameters(trainer)
        record["wrapped"] = type(trainer.model).__name__
        record["amp"] = trainer.amp

    def on_train_epoch_end(trainer):
        record["shares"].append(sorted(trainer.train_loader.sampler))  # the image indices this rank trained on

    trainer = SpikeDetectionTrainer(overrides=dict(
        model="spikeyolo-t.yaml", data=data, device="cpu", epochs=2, imgsz=64, batch=4, nbs=4, workers=0,
        optimizer="SGD", lr0=0.02, warmup_epochs=0, val=False, plots=False, seed=0, deterministic=False,
        project=project, name="gloo", exist_ok=True, verbose=False,
    ))
    trainer.add_callback("on_train_start", on_train_start)
    trainer.add_callback("on_train_epoch_end", on_train_epoch_end)
    trainer.train()
    record.update(final=parameters(trainer), world_size=trainer.world_size, local_rank=int(os.environ["LOCAL_RANK"]),
                  map50=float(trainer.metrics["metrics/mAP50(B)"]) if trainer.metrics else -1.0)
    torch.save(record, f"{out}/rank{rank}.pt")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAYOUTS = {
    "one node of two processes": [["--nnodes", "1", "--nproc_per_node", "2"]],
    # two torchrun agents on this machine stand for two nodes: WORLD_SIZE 2, LOCAL_RANK 0 on both
    "two nodes of one process": [["--nnodes", "2", "--node_rank", str(i), "--nproc_per_node", "1"] for i in (0, 1)],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_two_cpu_processes_train_to_identical_parameters(layout, tmp_path, coco8_yaml):
    data_dir = os.path.dirname(coco8_yaml)
    spec = yaml.safe_load(Path(coco8_yaml).read_text())
    data = tmp_path / "coco8-all.yaml"  # all 8 images for training: two batches of 2 per process and epoch
    images = os.path.join(data_dir, "coco8", "images")
    data.write_text(yaml.safe_dump({"train": [f"{images}/train", f"{images}/val"], "val": f"{images}/val",
                                    "names": spec["names"]}))
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1")
    port = str(_free_port())
    agents = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *nodes, "--master_addr", "127.0.0.1", "--master_port", port,
             str(worker), str(tmp_path), str(data), str(tmp_path / "runs")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        for nodes in LAYOUTS[layout]
    ]
    try:
        logs = [agent.communicate(timeout=600)[0] for agent in agents]
    finally:
        for agent in agents:
            agent.kill()
    assert all(agent.returncode == 0 for agent in agents), "\n".join(log[-4000:] for log in logs)

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["local_rank"] for r in ranks] == ([0, 1] if len(LAYOUTS[layout]) == 1 else [0, 0])
    for r in ranks:
        assert r["world_size"] == 2 and r["wrapped"] == "DistributedDataParallel"
        assert r["amp"] is False  # rank 0's AMP check (off on CPU) holds on every rank: all train in float32
    # each process trained on its own half of the 8 images, in every epoch
    for share0, share1 in zip(ranks[0]["shares"], ranks[1]["shares"]):
        assert len(share0) == len(share1) == 4 and not set(share0) & set(share1)
    names = list(ranks[0]["final"])
    assert names == list(ranks[1]["final"])
    # same start (DDP copies rank 0's parameters; Ultralytics seeds each rank differently), same end
    assert all(torch.equal(ranks[0]["initial"][n], ranks[1]["initial"][n]) for n in names)
    assert all(torch.equal(ranks[0]["final"][n], ranks[1]["final"][n]) for n in names)
    changed = [n for n in names if not torch.equal(ranks[0]["initial"][n], ranks[0]["final"][n])]
    assert len(changed) > len(names) // 2, "training changed too few parameters"
    assert ranks[0]["map50"] >= 0.0  # rank 0 got the final validation's metrics (gathered over both ranks)
    assert (tmp_path / "runs" / "gloo" / "weights" / "best.pt").is_file()
