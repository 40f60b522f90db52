"""Batch-1 inference latency on CPU, every execution path of one model, measured in one run.

Rows (ratios against the ANN twin, measured in the same process):

- ANN twin: the same re-parameterized network with every spiking neuron replaced by its ANN activation
  (ReLU for SpikeYOLO's neurons, SiLU for A2S neurons), float forward;
- spiking model, integer path: the converted float model on its integer path (one float32 conv over the codes);
- integer + energy accounting: the same inside ``spikedet.measure.energy.measure`` (spike counts per layer and
  neuron, every energy model); timed interleaved with the integer row, so machine drift cannot decide the
  overhead;
- bit-plane simulation: the converted model convolving every 0/1 (or -1/0/+1) spike plane;
- ONNX Runtime: the converted float model exported to ONNX (float32 ops), on onnxruntime's CPU provider;
- integer deployment model, PyTorch: ``spikedet convert --integer`` of the same network (int8 weights and
  integer neurons, bit-exact; per-layer errors measured on 4 coco8 train images at 320), its exact path;
- integer deployment model, ONNX Runtime: its exported graph (``convs="auto"``: ConvInteger on int8 codes,
  float32 convs and float64 requantization where the proven bounds make them exact, see
  ``spikedet.convert.integer_onnx``), timed interleaved with the float export (goal of issue 11: at most 1.00x
  the float export); and the same graph in integer ops only (``convs="integer"``: ``ConvInteger``, integer
  requantization), timed in the same loop.

Usage::

    python benchmarks/inference.py [--model weights/yolov5n-a2s.safetensors | spikeyolo-n.yaml] [--imgsz 640]
        [--repeats 10] [--bitplane-repeats 2] [--threads N]

Goals: integer path <= 1.10x the ANN twin (issue 4); energy accounting adds <= 10 % (issues 4 and 12); the
integer deployment model on ONNX Runtime <= 1.00x the float export (issue 11).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def ann_twin(model: nn.Module) -> nn.Module:
    """The model with every spiking neuron replaced by the ANN activation it stands for."""
    from spikedet.snn.neurons import A2SNeuron, SpikingNeuron

    twin = copy.deepcopy(model).float().eval()
    for name, module in list(twin.named_modules()):
        if isinstance(module, SpikingNeuron):
            parent_name, _, child = name.rpartition(".")
            parent = twin.get_submodule(parent_name) if parent_name else twin
            setattr(parent, child, nn.SiLU() if isinstance(module, A2SNeuron) and module.transfer == "silu" else nn.ReLU())
    return twin


def timed(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def timed_interleaved(fns: list, repeats: int, warmup: int = 1) -> list[float]:
    """Median time of each of ``fns``, run in turn within every repeat (drift hits all of them alike)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(x) for x in samples]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "weights" / "yolov5n-a2s.safetensors"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bitplane-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="the integer model's int8 tolerance (default: spikedet convert --integer's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import spikedet  # noqa: F401
    from spikedet.convert import bitplane
    from spikedet.convert.integer import IntegerConfig, to_integer
    from spikedet.io.images import load_batch, sample_images
    from spikedet.io.weights import load_model
    from spikedet.measure import energy
    from spikedet.nn.mode import is_converted, set_spike_mode

    model = load_model(args.model, allow_pickle=True).float().eval()
    if not is_converted(model):
        model.reparameterize()
    image, _ = load_batch(sample_images("val"), args.imgsz, 1)
    twin = ann_twin(model)
    converted = model if is_converted(model) else bitplane.convert(model, image)

    calibration, _ = load_batch(sample_images("train"), 320, 4)
    cfg = IntegerConfig() if args.tolerance is None else IntegerConfig(tolerance=args.tolerance)
    integer, _ = to_integer(converted, calibration, cfg)  # outside inference mode: it copies and folds weights
    rows = []
    with torch.inference_mode():
        t_ann = timed(lambda: twin(image), args.repeats)
        rows.append(("ANN twin (float, activations instead of neurons)", t_ann))
        set_spike_mode(converted, "integer")

        def with_energy():
            with energy.measure(converted) as recorder:
                converted(image)
            recorder.reports()

        t_int, t_energy = timed_interleaved([lambda: converted(image), with_energy], args.repeats)
        rows.append(("spiking model, integer path", t_int))
        rows.append(("integer + energy accounting", t_energy))
        set_spike_mode(converted, "bitplane")
        t_bp = timed(lambda: converted(image), args.bitplane_repeats)
        rows.append(("bit-plane simulation", t_bp))
        set_spike_mode(converted, "integer")
        t_exact = timed(lambda: integer(image), args.repeats)
        rows.append(("integer deployment model, PyTorch (exact)", t_exact))

    ratio = None
    if not args.no_onnx:
        import onnxruntime as ort

        from spikedet.convert.integer_onnx import export_integer_onnx
        from spikedet.convert.onnx import export_onnx
        from spikedet.io.integer_format import graph_document

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        feed = {"images": image.numpy()}
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(converted, Path(tmp) / "m.onnx", args.imgsz)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            graph, tensors = graph_document(integer)
            arrays = {k: v.numpy() for k, v in tensors.items()}
            int_sessions = [ort.InferenceSession(str(export_integer_onnx(graph, arrays, Path(tmp) / f"{convs}.onnx",
                                                                         convs=convs)),
                                                 options, providers=["CPUExecutionProvider"])
                            for convs in ("auto", "integer")]
            t_onnx, t_int_onnx, t_ops_onnx = timed_interleaved(
                [lambda s=s: s.run(None, feed) for s in [session, *int_sessions]], args.repeats)
        rows.append(("ONNX Runtime, float export of the spiking model", t_onnx))
        rows.append(("ONNX Runtime, integer deployment model (int8 and float32 convs, float64 requantization)",
                     t_int_onnx))
        rows.append(("ONNX Runtime, integer deployment model, integer ops only", t_ops_onnx))
        ratio = t_int_onnx / t_onnx

    cpu = platform.processor() or platform.machine()
    print(f"model {Path(args.model).name}, batch 1, {args.imgsz}x{args.imgsz}, CPU {cpu}, {args.threads} threads, "
          f"torch {torch.__version__}")
    print()
    print("| path | median latency | vs ANN twin |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.1f} ms | {seconds / t_ann:.2f}x |")
    print()
    print(f"energy accounting adds {100 * (t_energy / t_int - 1):.1f} % to the integer path "
          f"(goal <= 10 %); integer path {t_int / t_ann:.2f}x the ANN twin (goal <= 1.10x)")
    if ratio is not None:
        print(f"integer deployment model on ONNX Runtime: {ratio:.2f}x the float ONNX export (goal <= 1.00x)")


if __name__ == "__main__":
    main()
