"""Training on Ultralytics' loop: the loss falls, resume finishes the planned epochs, the DDP launcher builds spikedet's trainer."""

import subprocess
import sys
import textwrap

import pytest
import torch

from spikedet.model.detection import SpikeDetectionModel


def test_a_few_iterations_reduce_the_loss(coco8_yaml):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    torch.manual_seed(0)
    data = check_det_dataset(coco8_yaml)
    cfg = get_cfg(overrides={"imgsz": 128, "batch": 4})
    dataset = build_yolo_dataset(cfg, data["train"], 4, data, mode="val", rect=False, stride=32)
    batch = next(iter(build_dataloader(dataset, 4, 0, shuffle=False)))
    batch["img"] = batch["img"].float() / 255
    model = SpikeDetectionModel("spikeyolo-t.yaml", nc=80, verbose=False)
    model.args = cfg
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        losses.append(loss.sum().item())
    assert losses[-1] < 0.8 * losses[0], losses


import csv
import os
from pathlib import Path


def _rows(csv_path: Path) -> list[dict]:
    with open(csv_path) as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def test_resume_after_interruption_finishes_the_planned_epochs(tmp_path, coco8_yaml):
    script = textwrap.dedent(
        f"""
        import sys
        from spikedet import SpikeYOLO

        model = SpikeYOLO("spikeyolo-t.yaml")

        def stop_after_first_epoch(trainer):
            if trainer.epoch == 0:
                raise KeyboardInterrupt  # like Ctrl-C right after the first checkpoint was written

        model.add_callback("on_model_save", stop_after_first_epoch)
        try:
            model.train(data={coco8_yaml!r}, epochs=3, imgsz=64, batch=4, workers=0, project={str(tmp_path)!r},
                        name="run", plots=False, val=True, seed=0)
        except KeyboardInterrupt:
            sys.exit(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    last = tmp_path / "run" / "weights" / "last.pt"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["optimizer"] is not None
    first_epoch = _rows(tmp_path / "run" / "results.csv")
    assert len(first_epoch) == 1

    from spikedet import SpikeYOLO

    resumed = SpikeYOLO(str(last))
    resumed.train(resume=True)
    rows = _rows(tmp_path / "run" / "results.csv")
    assert [int(float(r["epoch"])) for r in rows] == [1, 2, 3]  # nothing lost, nothing repeated
    assert rows[0] == first_epoch[0]
    final = torch.load(last, weights_only=False)
    assert final["epoch"] == -1 and final["optimizer"] is None  # finished: Ultralytics strips the optimizer


def test_ddp_launcher_file_builds_spikedets_trainer(tmp_path, coco8_yaml):
    """Ultralytics' multi-GPU launcher pickles the trainer class into a generated script; run that script
    (single process, CPU) and check it rebuilds spikedet's trainer and trains spikedet's model."""
    from ultralytics.utils.dist import generate_ddp_file

    from spikedet.engine.train import SpikeDetectionTrainer

    trainer = SpikeDetectionTrainer(
        overrides={"model": "spikeyolo-t.yaml", "data": coco8_yaml, "epochs": 1, "imgsz": 64, "batch": 4,
                   "workers": 0, "project": str(tmp_path), "name": "ddp", "plots": False, "val": False, "device": "cpu"}
    )
    file = Path(generate_ddp_file(trainer))
    try:
        text = file.read_text()
        assert 'state["trainer"](cfg=cfg' in text
        probe = file.with_name(file.stem + "_probe.py")
        probe.write_text(
            text.replace("trainer.train()", "print('TRAINER', type(trainer).__module__, type(trainer).__name__)\n    trainer.train()\n"
                         "    print('MODEL', type(trainer.model).__name__)")
        )
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        proc = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "TRAINER spikedet.engine.train SpikeDetectionTrainer" in proc.stdout
        assert "MODEL SpikeDetectionModel" in proc.stdout
        assert (tmp_path / "ddp" / "weights" / "last.pt").is_file()
    finally:
        for f in file.parent.glob(file.stem + "*"):
            f.unlink(missing_ok=True)
        file.with_suffix(".pt").unlink(missing_ok=True)


@pytest.mark.slow
def test_small_scale_overfits_coco8():
    """The slow check of issue 3 (also: python benchmarks/overfit_coco8.py)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "overfit_coco8.py")], capture_output=True,
                          text=True, timeout=7200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mAP50 >= 0.5: yes" in proc.stdout
