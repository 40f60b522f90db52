"""Neuron cost against ReLU, measured in one run.

(a) forward + backward time of the neuron alone on ``[1, 8, 128, 80, 80]`` (T=1, batch 8), eager and
    ``torch.compile``d, as a ratio to ReLU on the same tensor;
(b) peak memory of forward + backward of ``neuron -> 3x3 conv -> BN`` as a ratio to ``ReLU -> 3x3 conv -> BN``.

Usage: ``python benchmarks/neuron.py [--device cpu|cuda] [--repeats 20] [--no-compile]``
Prints a markdown table. Goals (issue 2): (a) <= 2.5x eager, <= 1.5x compiled; (b) <= 1.10x memory.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from spikedet.snn.neurons import IBRALIF

SHAPE = (1, 8, 128, 80, 80)


class ReLUT(nn.Module):
    def forward(self, x):
        return torch.relu(x)


class Stack(nn.Module):
    """activation -> 3x3 conv -> BN over [T, B, C, H, W], T folded into the batch."""

    def __init__(self, act: nn.Module, c: int):
        super().__init__()
        self.act = act
        self.conv = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.act(x).flatten(0, 1)
        return self.bn(self.conv(y)).unflatten(0, x.shape[:2])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_fwd_bwd(fns, x, device, repeats: int, warmup: int = 3) -> list[float]:
    """Median seconds of fn(x).backward(grad) for each fn, interleaved so that both see the same machine."""
    grad = torch.ones(SHAPE, device=device)
    times = [[] for _ in fns]
    for i in range(warmup + repeats):
        for fn, samples in zip(fns, times):
            x.grad = None
            sync(device)
            t = time.perf_counter()
            fn(x).backward(grad)
            sync(device)
            if i >= warmup:
                samples.append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def peak_memory(kind: str, device: torch.device) -> int:
    """Peak extra bytes of one forward + backward of ``kind -> conv3x3 -> BN``.

    CUDA: the caching allocator's exact peak. CPU: the process's peak resident set (``VmHWM``, reset
    through ``/proc/self/clear_refs``) in a fresh subprocess whose allocator returns every large block
    to the OS on free (``glibc.malloc.mmap_threshold``), so resident memory follows live tensors.
    """
    if device.type == "cuda":
        module = Stack(_activation(kind), SHAPE[2]).to(device)
        x = torch.randn(SHAPE, device=device, requires_grad=True)
        module(x).sum().backward()
        x.grad = None
        module.zero_grad(set_to_none=True)
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        module(x).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")
    result = subprocess.run(
        [sys.executable, __file__, "--cpu-peak-child", kind],
        env=env, capture_output=True, text=True, check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


def _activation(kind: str) -> nn.Module:
    return ReLUT() if kind == "relu" else IBRALIF(D=5.11, N=100, T=1)


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _cpu_peak_child(kind: str) -> None:
    torch.manual_seed(0)
    module = Stack(_activation(kind), SHAPE[2])
    x = torch.randn(SHAPE, requires_grad=True)
    module(x).sum().backward()  # warm-up: lazy initialisation is not what we measure
    x.grad = None
    module.zero_grad(set_to_none=True)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size
    base = _proc_status("VmRSS")
    module(x).sum().backward()
    print(_proc_status("VmHWM") - base)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--cpu-peak-child", choices=["relu", "neuron"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cpu_peak_child:
        return _cpu_peak_child(args.cpu_peak_child)
    device = torch.device(args.device)
    torch.manual_seed(0)

    relu, neuron = ReLUT().to(device), IBRALIF(D=5.11, N=100, T=1).to(device)
    x = (torch.randn(SHAPE, device=device) * 2).requires_grad_(True)
    rows = []

    t_relu, t_neuron = time_fwd_bwd([relu, neuron], x, device, args.repeats)
    rows.append(("(a) neuron fwd+bwd, eager", f"{t_relu * 1e3:.2f} ms", f"{t_neuron * 1e3:.2f} ms", t_neuron / t_relu, 2.5))

    if not args.no_compile:
        c_relu = torch.compile(relu)
        c_neuron = torch.compile(neuron)
        t_crelu, t_cneuron = time_fwd_bwd([c_relu, c_neuron], x, device, args.repeats, warmup=3)
        rows.append(
            ("(a) neuron fwd+bwd, torch.compile", f"{t_crelu * 1e3:.2f} ms", f"{t_cneuron * 1e3:.2f} ms", t_cneuron / t_crelu, 1.5)
        )

    m_relu = peak_memory("relu", device)
    m_neuron = peak_memory("neuron", device)
    rows.append(("(b) act->conv3x3->BN peak memory", f"{m_relu / 2**20:.1f} MiB", f"{m_neuron / 2**20:.1f} MiB", m_neuron / m_relu, 1.10))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device.type} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, shape {SHAPE}")
    print()
    print("| measurement | ReLU | IBRA-LIF | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    for label, base, ours, ratio, goal in rows:
        print(f"| {label} | {base} | {ours} | {ratio:.2f}x | <= {goal:.2f}x | {'yes' if ratio <= goal else 'NO'} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
