"""``spikedet verify``: does every runtime compute the integer model's specification, bit for bit?

The reference is the pure-NumPy interpreter of the graph saved in the file (:mod:`spikedet.integer_reference`,
int64 arithmetic straight from ``docs/integer-format.md``). Each other runtime runs the same images and is
compared with it on every neuron's codes and on the head accumulators (the integers the float decode starts from):

- ``pytorch``: the model as spikedet loads it, on the CPU (its exact path: float32 or float64 convs on
  integers where a bound proves them exact, integer neurons);
- ``onnxruntime``: the exported graph of integer ops (:mod:`spikedet.convert.integer_onnx`) on the CPU;
- ``cuda``: the model on the first GPU, when there is one.

A runtime that cannot run here (no onnxruntime, no GPU) is listed under ``unavailable`` with the reason.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from spikedet import integer_reference
from spikedet.errors import SpikedetError, first_line
from spikedet.io.integer_format import graph_document
from spikedet.nn.conv import SpikeConv
from spikedet.nn.mode import is_integer
from spikedet.snn.neurons import SpikingNeuron
from spikedet.snn.spikes import SpikeTrain

RUNTIMES = ("pytorch", "onnxruntime", "cuda")


@dataclass
class RuntimeCheck:
    """One runtime against the reference: code and head-accumulator elements that differ, and its time."""

    runtime: str
    code_mismatches: int
    head_mismatches: int
    head_max_difference: float
    seconds: float


@dataclass
class IntegerVerification:
    """The result of :func:`verify_integer` (``as_dict()`` is ``spikedet verify --json``)."""

    reference: str
    images: list[str]
    imgsz: int
    codes: int
    head_values: int
    checks: list[RuntimeCheck] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    reference_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.code_mismatches == 0 and c.head_mismatches == 0 for c in self.checks)

    def as_dict(self) -> dict:
        return {
            "runtimes": [c.runtime for c in self.checks],
            "reference": self.reference,
            "codes": self.codes,
            "head_values": self.head_values,
            "mismatches": {c.runtime: c.code_mismatches for c in self.checks},
            "head_mismatches": {c.runtime: c.head_mismatches for c in self.checks},
            "head_max_difference": {c.runtime: c.head_max_difference for c in self.checks},
            "seconds": {"numpy": round(self.reference_seconds, 3), **{c.runtime: round(c.seconds, 3) for c in self.checks}},
            "unavailable": self.unavailable,
            "images": self.images,
            "imgsz": self.imgsz,
            "passed": self.passed,
        }


# -- the runtimes ----------------------------------------------------------------------------------

@torch.no_grad()
def torch_run(model: nn.Module, graph: dict, images: Tensor) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Codes of every neuron node and the head outputs' accumulators, from the model's own forward."""
    outputs = {o["name"]: o for o in graph["outputs"]}
    nodes = {n["id"]: n for n in graph["nodes"]}
    T = int(graph["T"])
    codes: dict[str, np.ndarray] = {}
    heads: dict[str, np.ndarray] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, SpikingNeuron) and name in nodes:
            def on_neuron(mod, args, out, name=name):
                q = out.codes if isinstance(out, SpikeTrain) else out
                codes[name] = q.reshape(-1, *q.shape[-3:]).to(torch.int64).cpu().numpy()
            hooks.append(m.register_forward_hook(on_neuron))
    for output in outputs.values():
        node = nodes[output["id"]]
        conv_id = node["inputs"][0] if node["op"] == "time_sum" else node["id"]
        conv = model.get_submodule(conv_id)
        if not isinstance(conv, SpikeConv):
            raise SpikedetError(f"head output {output['name']} is not a conv of the model")

        def on_head(mod, args, name=output["name"], summed=node["op"] == "time_sum"):
            acc = mod.integer_accumulators(args[0])
            if summed:
                acc = acc.view(T, -1, *acc.shape[1:]).sum(0)
            heads[name] = acc.to(torch.int64).cpu().numpy()
        hooks.append(conv.register_forward_pre_hook(on_head))
    try:
        model(images)
    finally:
        for h in hooks:
            h.remove()
    return codes, heads


def onnx_run(graph: dict, tensors: dict[str, np.ndarray], images: np.ndarray, folder: str | None = None,
             path: str | Path | None = None) -> tuple[dict, dict]:
    """The integer graph on ONNX Runtime's CPU provider (codes and head accumulators): exported into ``folder``,
    or the exported file ``path`` (which must carry every neuron's codes)."""
    import onnxruntime as ort

    from spikedet.convert.integer_onnx import export_integer_onnx

    if path is None:
        path = export_integer_onnx(graph, tensors, Path(folder) / "integer.onnx", codes=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, {"images": images})))
    heads = {o["name"]: values[o["name"]].astype(np.int64) for o in graph["outputs"]}
    codes = {n[len("codes:"):]: v.astype(np.int64) for n, v in values.items() if n.startswith("codes:")}
    return codes, heads


# -- the check -------------------------------------------------------------------------------------

def _compare(runtime: str, seconds: float, ref: tuple[dict, dict], got: tuple[dict, dict]) -> RuntimeCheck:
    (ref_codes, ref_heads), (codes, heads) = ref, got
    if set(codes) != set(ref_codes) or set(heads) != set(ref_heads):
        raise SpikedetError(f"{runtime} returned different neurons or head outputs than the reference")
    code_mismatches = sum(int(np.count_nonzero(codes[k] != v)) if codes[k].shape == v.shape else v.size
                          for k, v in ref_codes.items())
    head_mismatches, worst = 0, 0.0
    for k, v in ref_heads.items():
        if heads[k].shape != v.shape:
            head_mismatches += v.size
            continue
        diff = np.abs(heads[k] - v)
        head_mismatches += int(np.count_nonzero(diff))
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return RuntimeCheck(runtime, code_mismatches, head_mismatches, worst, seconds)


@torch.no_grad()
def verify_integer(model: nn.Module, images: Tensor, names: list[str] | None = None,
                   runtimes: tuple[str, ...] = RUNTIMES, onnx_file: str | Path | None = None,
                   document: tuple[dict, dict[str, np.ndarray]] | None = None) -> IntegerVerification:
    """Run ``images`` (``[B, 3, H, W]`` float32 in 0..1) on every available runtime and compare each with the
    NumPy reference (see the module docstring); ``onnx_file``: check this exported graph (with codes) rather
    than a fresh export; ``document``: the ``(graph, tensors)`` the file holds (default: the model's own)."""
    if not is_integer(model):
        raise SpikedetError("verify checks an integer model (spikedet convert WEIGHTS --integer makes one)")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise SpikedetError(f"unknown runtime {unknown[0]!r}; choose from {', '.join(RUNTIMES)}")
    if document is None:
        graph, tensors = graph_document(model)
        arrays = {k: v.cpu().numpy() for k, v in tensors.items()}
    else:
        graph, arrays = document
    batch = images.float().cpu()
    start = time.perf_counter()
    try:
        result = integer_reference.run(graph, arrays, batch.numpy())
    except ValueError as e:  # the reference refuses a malformed graph, naming the node
        raise SpikedetError(f"the integer graph is not valid: {first_line(e)}") from None
    reference = (result.codes, result.outputs)
    report = IntegerVerification("numpy", [str(n) for n in (names or [])], int(images.shape[-1]),
                                 sum(v.size for v in result.codes.values()), sum(v.size for v in result.outputs.values()))
    report.reference_seconds = time.perf_counter() - start
    model = model.eval()
    for runtime in runtimes:
        start = time.perf_counter()
        if runtime == "pytorch":
            got = torch_run(model.cpu(), graph, batch)
        elif runtime == "cuda":
            if not torch.cuda.is_available():
                report.unavailable[runtime] = "no CUDA device"
                continue
            got = torch_run(model.cuda(), graph, batch.cuda())
            model.cpu()
        else:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                report.unavailable[runtime] = "onnxruntime is not installed (pip install spikedet[export])"
                continue
            with tempfile.TemporaryDirectory() as folder:
                got = onnx_run(graph, arrays, batch.numpy(), folder, onnx_file)
        report.checks.append(_compare(runtime, time.perf_counter() - start, reference, got))
    if not report.checks:
        why = "; ".join(f"{k}: {v}" for k, v in report.unavailable.items()) or "none was asked for"
        raise SpikedetError(f"no runtime could run here ({why})")
    return report
