"""Speed of the NumPy integer reference (``spikedet.integer_reference``) on conv-heavy graphs, measured in one run.

Two random integer graphs at 640x640, batch 1, T=1, every conv followed by a threshold neuron (codes 0..15):
(a) ``yolov5n``: YOLOv5n v6's layout (57 convs in backbone and neck, C3 blocks, SPPF, up to 256 channels, plus
    the 3 head convs); (b) ``chain20``: 20 3x3 convs, 32 to 64 channels, strides 1 and 2.
Baseline, same run: the same graph in float32 with torch on one thread (neurons as a clamp), so the ratio reads
"how many float32 PyTorch forward passes one integer reference pass costs" on this machine.

Usage: ``python benchmarks/integer_reference.py [--size 640] [--repeats 1] [--graphs yolov5n,chain20]``
Goal (issue 11): a YOLOv5n-sized graph at 640 runs in well under a minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from spikedet import integer_reference as ir


class GraphBuilder:
    """Builds an integer graph of random int8 convs, each followed by a threshold neuron."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[dict] = [{"id": "input", "op": "input"}]
        self.tensors: dict[str, np.ndarray] = {}
        self.channels = {"input": 3}
        self.convs = 0
        self.heads: list[str] = []  # the nodes the graph outputs

    def conv(self, source: str, cout: int, k: int = 1, s: int = 1, neuron: bool = True) -> str:
        cid, self.convs = f"conv{self.convs}", self.convs + 1
        cin, p = self.channels[source], k // 2 if k > 1 else 0
        if k == 6:
            p = 2
        t = self.tensors
        t[f"{cid}.w"] = self.rng.integers(-127, 128, (cout, cin, k, k)).astype(np.int8)
        t[f"{cid}.b"] = self.rng.integers(-1000, 1000, cout).astype(np.int64)
        t[f"{cid}.s"] = np.full(cout, 1e-3)
        self.nodes.append({
            "id": cid, "op": "conv", "inputs": [source], "weight": f"{cid}.w", "bias": f"{cid}.b",
            "input_zero": None, "scale": f"{cid}.s", "stride": [s, s], "padding": [p, p], "groups": 1,
            "bound": 2**62, "accumulator_bits": 64, "module": cid,
        })  # fmt: skip
        self.channels[cid] = cout
        if not neuron:
            return cid
        nid = f"{cid}.neuron"
        t[f"{nid}.m"] = np.full(cout, 1, np.int64)
        self.nodes.append({
            "id": nid, "op": "neuron", "inputs": [cid], "module": nid, "T": 1, "multiplier": f"{nid}.m",
            "shift": 12, "levels": 15, "n": 1.0, "zero": 0, "encoding": "binary", "rest": None,
            "kind": "threshold", "fraction_bits": 1, "rounding": "nearest", "leak": None,
        })  # fmt: skip
        self.channels[nid] = cout
        return nid

    def op(self, op: str, inputs: list[str], channels: int, **fields) -> str:
        nid = f"{op}{len(self.nodes)}"
        self.nodes.append({"id": nid, "op": op, "inputs": inputs, **fields})
        self.channels[nid] = channels
        return nid

    def c3(self, source: str, cout: int, n: int, shortcut: bool = True) -> str:
        hidden = cout // 2
        a, b = self.conv(source, hidden), self.conv(source, hidden)
        for _ in range(n):
            y = self.conv(self.conv(a, hidden), hidden, 3)
            a = self.op("add", [a, y], hidden) if shortcut else y
        return self.conv(self.op("concat", [a, b], 2 * hidden), cout)

    def graph(self, heads: list[str]) -> dict:
        outputs = []
        for h in heads:
            out = self.op("time_sum", [h], self.channels[h])
            self.tensors[f"{out}.scale"] = np.full(self.channels[h], 1e-3)
            outputs.append({"id": out, "name": out, "scale": f"{out}.scale", "divisor": 1})
        return {
            "format": "spikedet-integer-graph", "version": 1, "T": 1,
            "input": {"id": "input", "channels": 3, "levels": 255},
            "nodes": self.nodes, "outputs": outputs, "head": {},
        }  # fmt: skip


def yolov5n() -> GraphBuilder:
    g = GraphBuilder()
    x = g.conv(g.conv("input", 16, 6, 2), 32, 3, 2)
    p3 = g.c3(x, 32, 1)
    p3 = g.c3(g.conv(p3, 64, 3, 2), 64, 2)
    p4 = g.c3(g.conv(p3, 128, 3, 2), 128, 3)
    x = g.c3(g.conv(p4, 256, 3, 2), 256, 1)
    y = g.conv(x, 128)  # SPPF
    pools = [y]
    for _ in range(3):
        pools.append(g.op("maxpool", [pools[-1]], 128, kernel=5, stride=1, padding=2))
    x10 = g.conv(g.conv(g.op("concat", pools, 512), 256), 128)
    up = g.op("upsample", [x10], 128, scale=2)
    x14 = g.conv(g.c3(g.op("concat", [up, p4], 256), 128, 1, False), 64)
    up = g.op("upsample", [x14], 64, scale=2)
    out3 = g.c3(g.op("concat", [up, p3], 128), 64, 1, False)
    out4 = g.c3(g.op("concat", [g.conv(out3, 64, 3, 2), x14], 128), 128, 1, False)
    out5 = g.c3(g.op("concat", [g.conv(out4, 128, 3, 2), x10], 256), 256, 1, False)
    g.heads = [g.conv(o, 255, neuron=False) for o in (out3, out4, out5)]
    return g


def chain20() -> GraphBuilder:
    g = GraphBuilder(1)
    x = "input"
    for i in range(20):
        x = g.conv(x, 32 if i < 10 else 64, 3, 2 if i in (0, 5, 10) else 1)
    g.heads = [x]
    return g


def torch_baseline(graph: dict, tensors: dict, size: int) -> tuple[float, int]:
    """The same graph in float32 torch (neurons as a clamp), timed; and its multiply-accumulates."""
    x = {"input": torch.rand(1, 3, size, size)}
    weights = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items() if k.endswith(".w")}
    macs, start = 0, time.perf_counter()
    with torch.no_grad():
        for node in graph["nodes"][1:]:
            op, xs = node["op"], [x[i] for i in node["inputs"]]
            if op == "conv":
                w = weights[node["weight"]]
                y = F.conv2d(xs[0], w, stride=node["stride"], padding=node["padding"])
                macs += y.numel() * w[0].numel()
            elif op == "neuron":
                y = xs[0].clamp(0, 15)
            elif op == "add":
                y = xs[0] + xs[1]
            elif op == "concat":
                y = torch.cat(xs, 1)
            elif op == "maxpool":
                y = F.max_pool2d(xs[0], node["kernel"], node["stride"], node["padding"])
            elif op == "upsample":
                y = F.interpolate(xs[0], scale_factor=node["scale"])
            else:
                y = xs[0]
            x[node["id"]] = y
    return time.perf_counter() - start, macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--graphs", default="yolov5n,chain20")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, torch 1 thread"
    )
    print("| graph | convs | GMAC | reference s | torch float32 s | ratio |\n|---|---|---|---|---|---|")
    images = np.random.default_rng(2).integers(0, 256, (1, 3, args.size, args.size), dtype=np.uint8)
    for name in args.graphs.split(","):
        g = {"yolov5n": yolov5n, "chain20": chain20}[name]()
        graph = g.graph(g.heads)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ir.run(graph, g.tensors, images)
            times.append(time.perf_counter() - start)
        baseline, macs = min(torch_baseline(graph, g.tensors, args.size) for _ in range(args.repeats))
        best = min(times)
        print(f"| {name} | {g.convs} | {macs / 1e9:.2f} | {best:.1f} | {baseline:.2f} | {best / baseline:.0f}x |")


if __name__ == "__main__":
    main()
