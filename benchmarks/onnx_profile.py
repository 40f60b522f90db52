"""Where an integer model's ONNX graph spends its time: ONNX Runtime's own profiler, summed per op type.

Exports the model's integer graph (as ``spikedet export`` does, without the codes outputs, or with the trains the
service's ONNX Runtime backend reads with ``--trains``), runs it on bus.jpg letterboxed as the service does and
prints, per op type, the kernel time per run, its share and the node count.

Usage: ``python benchmarks/onnx_profile.py [WEIGHTS] [--imgsz 640] [--threads 1] [--runs 7] [--trains]``
(default weights: the shipped default, an integer model).
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="?", default=None)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--trains", action="store_true", help="the graph the service runs (spike trains returned)")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    from spikedet.convert.bitplane import spiking
    from spikedet.convert.integer_onnx import export_integer_onnx
    from spikedet.io.images import default_image, letterbox_tensor, predictor_stride, read_image
    from spikedet.io.integer_format import graph_document
    from spikedet.io.weights import load_model, resolve
    from spikedet.nn.mode import is_integer

    weights = resolve(args.weights, allow_pickle=False)
    model = spiking(load_model(weights), "integer")
    if not is_integer(model):
        raise SystemExit(f"onnx_profile: {weights} is not an integer model: spikedet convert --integer makes one")
    graph, tensors = graph_document(model)
    # the input the service's ONNX Runtime backend feeds: the rectangle Ultralytics' predictor makes (640x480 here)
    x = letterbox_tensor(read_image(default_image()), args.imgsz, predictor_stride(model))[None].numpy()
    with tempfile.TemporaryDirectory() as folder:
        path = export_integer_onnx(graph, {k: v.numpy() for k, v in tensors.items()}, Path(folder) / "m.onnx",
                                   codes="trains" if args.trains else False)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        options.enable_profiling, options.profile_file_prefix = True, str(Path(folder) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(args.runs):
            session.run(None, {"images": x})
        events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warmed = model_runs[0]["ts"] + model_runs[0]["dur"]  # the first run (allocations, caches) is left out
    runs = len(model_runs) - 1
    per_op, nodes = collections.defaultdict(float), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= warmed:
            per_op[e["args"]["op_name"]] += e["dur"] / runs
            nodes[e["args"]["op_name"]] += 1
    total = sum(per_op.values())
    print(f"{Path(weights).name} at {x.shape[-2]}x{x.shape[-1]}, {args.threads} thread(s), "
          f"{'trains returned' if args.trains else 'plain'} graph: kernel time per run, averaged over {runs} runs "
          f"after a first one")
    print("| op | ms per run | share | nodes |\n|---|---:|---:|---:|")
    for op, us in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"| {op} | {us / 1e3:.2f} | {100 * us / total:.1f} % | {round(nodes[op] / runs)} |")
    print(f"| all kernels | {total / 1e3:.2f} | | |")


if __name__ == "__main__":
    main()
