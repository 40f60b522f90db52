"""Distributed training beyond what Ultralytics' trainer does itself: several nodes, and CPU processes.

Ultralytics runs DDP on the GPUs of one machine: ``device=0,1,2,3`` re-launches the training under
``torch.distributed.run`` with one process per GPU, its world size the number of devices named, NCCL between
them. spikedet's trainer (:mod:`spikedet.engine.train`) keeps that and adds:

- **several nodes**: in a process that ``torchrun`` started (by hand, on any number of nodes, or by Ultralytics'
  launcher) the world size is torchrun's ``WORLD_SIZE`` -- every process of every node -- not the number of local
  devices (:func:`launched_world_size`); ranks are torchrun's ``RANK``, devices are picked by ``LOCAL_RANK``;
- **CPU processes**: on ``device=cpu`` Ultralytics has no DDP (its world size is 0 there, its process group
  set-up picks a CUDA device, its DDP wrap passes GPU ``device_ids``). spikedet starts a gloo process group
  (:func:`init_cpu_process_group`) and wraps the model in DDP without device ids (:func:`wrap_cpu_model`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from ultralytics.utils.torch_utils import TORCH_2_13

#: As Ultralytics' own process group: a slow first epoch (label caches, compilation) must not time out.
TIMEOUT = timedelta(hours=3)


def launched_world_size(environ: Mapping[str, str] = os.environ) -> int:
    """The world size of a process that torchrun started (``WORLD_SIZE`` when ``LOCAL_RANK`` is set), else 0.

    A world of one process is not distributed (0), as Ultralytics reads it (its ``RANK`` is -1 then).
    """
    if "LOCAL_RANK" not in environ:
        return 0
    world = int(environ.get("WORLD_SIZE", "1"))
    return world if world > 1 else 0


def init_cpu_process_group(rank: int, world_size: int) -> None:
    """Join the gloo process group of CPU training (address and port from torchrun's ``MASTER_ADDR/PORT``)."""
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=TIMEOUT)


def wrap_cpu_model(model: nn.Module, compiled: bool) -> nn.parallel.DistributedDataParallel:
    """``model`` (on the CPU) in DDP with Ultralytics' settings, less the GPU device ids a CPU module refuses.

    Gradients are averaged across processes; buffers (BatchNorm statistics) are not synchronised, as in
    Ultralytics; rank 0's parameters and buffers are copied to every process when wrapping.
    """
    buffers = "forward_sync_buffers" if TORCH_2_13 else "broadcast_buffers"
    return nn.parallel.DistributedDataParallel(
        model, find_unused_parameters=not compiled, static_graph=compiled, **{buffers: False}
    )


def broadcast_flag(flag: bool, src: int = 0) -> bool:
    """Process ``src``'s value of ``flag``, on every process."""
    value = torch.tensor(int(flag))
    dist.broadcast(value, src=src)
    return bool(value)


@torch.no_grad()
def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of ``module`` from process ``src`` to all processes."""
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=src)
