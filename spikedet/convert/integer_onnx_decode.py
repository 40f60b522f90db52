"""An integer model's head decode: its accumulators to Ultralytics' ``output0``, in PyTorch and as ONNX.

The integer graph ends at the head convs' accumulators; their real values are ``acc * scale[c] / divisor``
(float64, rounded to float32: ``docs/integer-format.md``) and the model's own head turns those into
``output0`` ``[B, 4 + nc, anchors]``. :func:`decode_heads` is that step (the ONNX Runtime backend calls it),
and :func:`append_output0` adds the same step to an exported integer graph as its first output, so that
``YOLO("model.onnx")`` reads an integer export like any other (the integer outputs follow it, unchanged).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikedet.errors import SpikedetError


def decode_heads(head: nn.Module, info: dict, values: dict[str, torch.Tensor]) -> torch.Tensor:
    """``output0`` from the head outputs' real values (float32, by graph output name) through ``head``'s decode;
    ``info`` is the graph's ``head`` entry (which outputs are which)."""
    if info["type"] == "V5Detect":
        return head.decode([values[n] for n in info["outputs"]])
    b = next(iter(values.values())).shape[0]
    boxes = torch.cat([values[n].view(b, 4 * head.reg_max, -1) for n in info["box"]], -1)
    scores = torch.cat([values[n].view(b, head.nc, -1) for n in info["cls"]], -1)
    return head._inference({"boxes": boxes, "scores": scores, "feats": [values[n] for n in info["box"]]})


class _Decode(nn.Module):
    """The head outputs' accumulators (in graph output order) -> ``output0``, for tracing."""

    def __init__(self, head: nn.Module, graph: dict, tensors: dict[str, np.ndarray]):
        super().__init__()
        self.head, self.info = head, graph["head"]
        self.names = [o["name"] for o in graph["outputs"]]
        self.divisors = [float(o.get("divisor", 1)) for o in graph["outputs"]]
        for i, o in enumerate(graph["outputs"]):
            self.register_buffer(f"scale{i}", torch.from_numpy(np.asarray(tensors[o["scale"]], np.float64)).view(1, -1, 1, 1))

    def forward(self, *accumulators: torch.Tensor) -> torch.Tensor:
        values = {name: (acc.double() * getattr(self, f"scale{i}") / self.divisors[i]).float()
                  for i, (name, acc) in enumerate(zip(self.names, accumulators))}
        return decode_heads(self.head, self.info, values)


def append_output0(path: str | Path, head: nn.Module, graph: dict, tensors: dict[str, np.ndarray], imgsz: int,
                   opset: int) -> None:
    """Add ``output0`` (the head decode, traced from ``head``) to the integer graph saved at ``path``, as its
    first output; every other output stays, in order. The decode is traced at ``imgsz`` with the image size
    left dynamic, and its nodes are prefixed ``decode/``."""
    import onnx
    from onnx import compose, version_converter

    model = onnx.load(str(path))
    shapes = {o.name: o for o in model.graph.output}
    names = [o["name"] for o in graph["outputs"]]
    stride = [int(s) for s in head.stride]
    if len(stride) != len(names) and graph["head"]["type"] == "V5Detect":
        raise SpikedetError("the head's strides do not match the graph's outputs")
    dummies = []
    for name in names:  # one accumulator tensor per output at imgsz: [1, C, imgsz / stride, imgsz / stride]
        channels = shapes[name].type.tensor_type.shape.dim[1].dim_value
        level = _level(graph["head"], name)
        side = imgsz // stride[level]
        dummies.append(torch.zeros(1, channels, side, side, dtype=_torch_type(shapes[name])))
    decoder = _Decode(head, graph, tensors).eval()
    trace_opset = min(opset, 20)  # the TorchScript exporter's newest; converted up below
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values baked into the graph
        traced = Path(folder) / "decode.onnx"
        axes = {name: {0: "batch", 2: f"h{i}", 3: f"w{i}"} for i, name in enumerate(names)}
        torch.onnx.export(decoder, tuple(dummies), str(traced), opset_version=trace_opset, dynamo=False,
                          input_names=names, output_names=["output0"], dynamic_axes={**axes, "output0": {0: "batch", 2: "anchors"}})
        decode = onnx.load(str(traced))
    if trace_opset != opset:
        decode = version_converter.convert_version(decode, opset)
    decode = compose.add_prefix(decode, "decode/", rename_inputs=False, rename_outputs=False)
    g = model.graph
    g.node.extend(decode.graph.node)
    g.initializer.extend(decode.graph.initializer)
    kept = list(g.output)
    del g.output[:]
    g.output.extend([*decode.graph.output, *kept])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _level(info: dict, name: str) -> int:
    for key in ("outputs", "box", "cls"):
        if name in info.get(key, []):
            return info[key].index(name)
    raise SpikedetError(f"head output {name!r} is not in the graph's head description")


def _torch_type(value_info) -> torch.dtype:
    from onnx import TensorProto

    kinds = {TensorProto.INT32: torch.int32, TensorProto.INT64: torch.int64}
    elem = value_info.type.tensor_type.elem_type
    if elem not in kinds:
        raise SpikedetError(f"head output {value_info.name!r}: accumulators of ONNX type {elem}, expected int32 or int64")
    return kinds[elem]
