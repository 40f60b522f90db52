"""The integer ONNX model against float ONNX exports of the same network, on ONNX Runtime CPU, in one run.

Network: 20 3x3 convs, 64..256 channels, stride-2 steps from the 640x640 input down to 20x20, a neuron after
every conv but the last (whose accumulators are the output). Three ONNX models of it, built here:

- ``integer``: the network as an integer graph (INTEGER_GRAPH.md v1: int8 weights, int64 biases, threshold
  neurons with ``levels`` codes and per-channel multipliers of ``multiplier_bits`` bits) exported by
  :func:`spikedet.convert.integer_onnx.export_integer_onnx`;
- ``float-codes``: the float export of the same spiking network (float32 Conv, the neuron as Mul, Round, Clip:
  codes carried as floats, the way spikedet's float ONNX export runs it);
- ``float-relu``: plain float32 Conv + Relu (fused by ONNX Runtime): the fastest float graph of these shapes.

Times are medians over ``--repeats`` runs, the models interleaved, for each thread count.

Usage: ``python benchmarks/integer_onnx_speed.py [--levels 511] [--multiplier-bits 8] [--threads 1 2]
[--repeats 5] [--size 640] [--profile]``. Goal (issue 11): integer at least as fast as float-codes.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from spikedet.convert.integer_onnx import export_integer_onnx

#: (output channels, stride) of the 20 convs
LAYERS = [(64, 2), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1),
          (256, 1), (256, 2), (256, 1), (256, 1), (256, 1), (256, 1), (256, 2), (256, 1), (256, 1), (256, 1)]
FRACTION_BITS = 4


def network(levels: int, multiplier_bits: int, seed: int = 0):
    """The integer graph and its tensors, and the float weights, biases and code scales of the same network."""
    rng = np.random.default_rng(seed)
    nodes, tensors, floats = [], {}, []
    src, cin, code_max = "input", 3, 255
    for i, (cout, stride) in enumerate(LAYERS):
        w = rng.integers(-127, 128, (cout, cin, 3, 3)).astype(np.int8)
        bias = rng.integers(-1000, 1001, cout).astype(np.int64)
        tensors.update({f"w{i}": w, f"b{i}": bias, f"s{i}": np.full(cout, 1e-4)})
        nodes.append({"id": f"conv{i}", "op": "conv", "inputs": [src], "weight": f"w{i}", "bias": f"b{i}",
                      "input_zero": None, "stride": [stride, stride], "padding": [1, 1], "groups": 1,
                      "scale": f"s{i}", "bound": 0, "accumulator_bits": 32, "module": f"layer{i}"})
        src, cin = f"conv{i}", cout
        if i == len(LAYERS) - 1:
            floats.append((w, bias, stride, None))
            break
        # codes saturate at an eighth of the worst-case accumulator: 2**S = (bound / 8) * m / ((L + 1) 2**F)
        bound = int(np.abs(w.astype(np.int64)).sum((1, 2, 3)).max()) * code_max
        m = rng.integers(2 ** (multiplier_bits - 1), 2**multiplier_bits, cout).astype(np.int64)
        shift = max(1, round(np.log2(bound / 8 * 2 ** (multiplier_bits - 1) / ((levels + 1) * 2**FRACTION_BITS))))
        tensors[f"m{i}"] = m
        nodes.append({"id": f"neuron{i}", "op": "neuron", "inputs": [src], "module": f"layer{i}", "T": 1,
                      "multiplier": f"m{i}", "shift": shift, "levels": levels, "n": 1, "zero": 0,
                      "encoding": "binary", "rest": None, "kind": "threshold", "fraction_bits": FRACTION_BITS,
                      "rounding": "nearest", "leak": {"multiplier": 1, "shift": 2}})
        floats.append((w, bias, stride, m / 2.0 ** (shift + FRACTION_BITS)))
        src, code_max = f"neuron{i}", levels
    graph = {"format": "spikedet-integer-graph", "version": 1, "T": 1,
             "input": {"id": "input", "channels": 3, "levels": 255}, "nodes": nodes,
             "outputs": [{"id": src, "name": "p5", "scale": f"s{len(LAYERS) - 1}", "divisor": 1}],
             "head": {"type": "benchmark"}}
    return graph, tensors, floats


def float_model(floats, levels: int, codes: bool) -> bytes:
    """Float32 Conv graph of the same network: the neuron as Mul, Round, Clip (``codes``) or as Relu."""
    nodes, inits, x = [], [], "images"
    for i, (w, bias, stride, k) in enumerate(floats):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(bias.astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1] * 4, strides=[stride] * 2))
        x = f"c{i}"
        if k is None:
            continue
        if codes:
            inits += [numpy_helper.from_array(k.astype(np.float32).reshape(1, -1, 1, 1), f"k{i}"),
                      numpy_helper.from_array(np.array(levels, np.float32), f"L{i}"),
                      numpy_helper.from_array(np.array(0, np.float32), f"z{i}")]
            nodes += [helper.make_node("Mul", [x, f"k{i}"], [f"u{i}"]), helper.make_node("Round", [f"u{i}"], [f"r{i}"]),
                      helper.make_node("Clip", [f"r{i}", f"z{i}", f"L{i}"], [f"q{i}"])]
            x = f"q{i}"
        else:
            nodes.append(helper.make_node("Relu", [x], [f"q{i}"]))
            x = f"q{i}"
    graph = helper.make_graph(nodes, "float", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                              ["batch", 3, "height", "width"])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()


def reference(graph, tensors, images: np.ndarray) -> np.ndarray:
    """The network's output by the spec's formulas (int64; convs in float64, exact for these integers)."""
    import torch
    import torch.nn.functional as F

    x = np.round(images * np.float32(255)).astype(np.int64)
    for node in graph["nodes"]:
        if node["op"] == "conv":
            w = torch.from_numpy(tensors[node["weight"]].astype(np.float64))
            y = F.conv2d(torch.from_numpy(x.astype(np.float64)), w, stride=node["stride"], padding=1).numpy()
            x = y.astype(np.int64) + tensors[node["bias"]][None, :, None, None]
        else:
            S, Fb, m = node["shift"], node["fraction_bits"], tensors[node["multiplier"]][None, :, None, None]
            J = (x * m + 2 ** (S - 1)) // 2**S
            x = np.clip((J + 2 ** (Fb - 1)) // 2**Fb, 0, node["levels"])
    return x


def session(model, threads: int, profile: str | None = None):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def profile_by_op(sess) -> dict[str, float]:
    """Milliseconds per op type over the profiled runs (ONNX Runtime's own profile)."""
    events = json.loads(Path(sess.end_profiling()).read_text())
    totals = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            totals[e["args"]["op_name"]] += e["dur"] / 1000
    return dict(totals.most_common())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=511)
    parser.add_argument("--multiplier-bits", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--profile", action="store_true", help="also print the integer model's time per op type")
    args = parser.parse_args(argv)
    graph, tensors, floats = network(args.levels, args.multiplier_bits)
    with tempfile.TemporaryDirectory() as tmp:
        integer = export_integer_onnx(graph, tensors, Path(tmp) / "integer.onnx").read_bytes()
    models = {"integer": integer, "float-codes": float_model(floats, args.levels, True),
              "float-relu": float_model(floats, args.levels, False)}
    x = np.random.default_rng(1).random((1, 3, args.size, args.size), dtype=np.float32)
    small = x[:, :, :96, :96]  # the timed model is exact: its output equals the spec's at a small size
    (got,) = session(integer, 1).run(None, {"images": small})
    if not np.array_equal(got, reference(graph, tensors, small)):
        raise SystemExit("the integer model does not match the reference")
    print(f"levels={args.levels} multiplier_bits={args.multiplier_bits} size={args.size} onnxruntime={ort.__version__}")
    print("| threads | integer ms | float-codes ms | float-relu ms | integer / float-codes | integer / float-relu |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        sessions = {name: session(model, threads) for name, model in models.items()}
        times = {name: [] for name in models}
        for i in range(args.repeats + 1):
            for name, sess in sessions.items():
                start = time.perf_counter()
                sess.run(None, {"images": x})
                if i:  # the first run is a warm-up
                    times[name].append((time.perf_counter() - start) * 1000)
        med = {name: statistics.median(t) for name, t in times.items()}
        print(f"| {threads} | {med['integer']:.0f} | {med['float-codes']:.0f} | {med['float-relu']:.0f} | "
              f"{med['integer'] / med['float-codes']:.2f} | {med['integer'] / med['float-relu']:.2f} |")
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            sess = session(integer, args.threads[0], str(Path(tmp) / "integer"))
            for _ in range(2):
                sess.run(None, {"images": x})
            print(json.dumps({op: round(ms / 2, 1) for op, ms in profile_by_op(sess).items()}))


if __name__ == "__main__":
    main()
