"""An integer model on ONNX Runtime: its graph of integer ops, the float decode, and the energy report.

The exported graph (:mod:`spikedet.convert.integer_onnx`) returns the head accumulators and every neuron's
codes. The accumulators become ``output0`` through the model's own head decode (the same float32 values the
PyTorch path decodes: ``acc * scale``); the codes become the energy report through the same template
:class:`~spikedet.measure.graph_energy.GraphEnergy` fills for float graphs. Each conv reads spike trains: a
neuron's codes, or those codes max-pooled or upsampled on the way (read off the graph: ``concat`` places trains
at channel offsets, ``add`` sums trains into the same channels); each train is counted once per image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikedet.convert.integer_onnx import export_integer_onnx
from spikedet.errors import SpikedetError
from spikedet.io.integer_format import graph_document
from spikedet.measure.costs import EnergyConstants
from spikedet.measure.graph_energy import GraphEnergy
from spikedet.measure.report import EnergyReport
from spikedet.snn.code import SpikeCode


def graph_trains(graph: dict) -> tuple[list[dict], list[tuple]]:
    """The energy points of the graph's convs (per conv, in call order, each train it reads) and the distinct
    trains they name: ``(neuron id, (op, parameter)...)``, the ops applied to the neuron's codes on the way."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    channels: dict[str, int] = {}
    for n in graph["nodes"]:  # channel counts of every node
        if n["op"] == "conv":
            channels[n["id"]] = int(n["channels"])
        elif n["op"] == "concat":
            channels[n["id"]] = sum(channels[i] for i in n["inputs"])
        elif n["op"] != "input":
            channels[n["id"]] = channels[n["inputs"][0]]

    def trains(node_id: str, offset: int, ops: tuple) -> list[tuple[tuple, int]]:
        node = nodes[node_id]
        if node["op"] == "neuron":
            return [((node_id, *ops), offset)]
        if node["op"] == "concat":
            out = []
            for i in node["inputs"]:
                out += trains(i, offset, ops)
                offset += channels[i]
            return out
        if node["op"] == "add":
            return [t for i in node["inputs"] for t in trains(i, offset, ops)]
        if node["op"] == "maxpool":
            return trains(node["inputs"][0], offset, ((("maxpool", node["kernel"], node["stride"], node["padding"]),)
                                                      + ops))
        if node["op"] == "upsample":
            return trains(node["inputs"][0], offset, (("upsample", node["scale"]),) + ops)
        raise SpikedetError(f"{node_id}: a conv reads {node['op']} output, not spike codes")

    keys: list[tuple] = []
    points: list[dict] = []
    record = 0
    for n in graph["nodes"]:
        if n["op"] != "conv":
            continue
        if n["inputs"] != ["input"]:
            terms = trains(n["inputs"][0], 0, ())
            shared = {off for i, (_, off) in enumerate(terms) if any(o == off for _, o in terms[:i])}
            for key, off in terms:
                if key not in keys:
                    keys.append(key)
                points.append({"kind": "conv", "record": record, "output": keys.index(key), "alone": off not in shared})
        record += 1
    for i, n in enumerate(x for x in graph["nodes"] if x["op"] == "neuron"):
        key = (n["id"],)
        if key not in keys:
            keys.append(key)
        points.append({"kind": "neuron", "record": i, "output": keys.index(key)})
    return points, keys


def _code(node: dict) -> SpikeCode:
    return SpikeCode(int(node["levels"]), float(node["n"]), int(node["zero"]), node["encoding"], node["rest"])


def _apply(codes: torch.Tensor, ops: tuple) -> torch.Tensor:
    for op in ops:
        if op[0] == "maxpool":
            codes = F.max_pool2d(codes, op[1], op[2], op[3])
        else:
            codes = F.interpolate(codes, scale_factor=op[1], mode="nearest")
    return codes


class IntegerGraphSession:
    """The integer ``model`` on ONNX Runtime's CPU provider: :meth:`run` gives ``output0`` (decoded by the
    model's head) and the image's energy report, from one run of the graph (exported into ``folder``)."""

    def __init__(self, model: nn.Module, imgsz: int, folder, threads: int = 1):
        import onnxruntime as ort

        graph, tensors = graph_document(model)
        arrays = {k: v.cpu().numpy() for k, v in tensors.items()}
        self.path = export_integer_onnx(graph, arrays, f"{folder}/integer-{imgsz}.onnx", codes=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.graph, self.head = graph, model.model[-1]
        self.scales = {o["name"]: (arrays[o["scale"]].reshape(1, -1, 1, 1), int(o["divisor"])) for o in graph["outputs"]}
        points, self.keys = graph_trains(graph)
        neurons = {n["id"]: n for n in graph["nodes"] if n["op"] == "neuron"}
        tables = {str(i): _code(neurons[key[0]]).spike_table().long().tolist() for i, key in enumerate(self.keys)}
        # each distinct train's codes are counted as a float graph's "codes" outputs are (convert/onnx.spike_counts)
        self.energy = GraphEnergy(model, imgsz, {"form": "codes", "tables": tables, "points": points})

    def decode(self, heads: dict[str, np.ndarray]) -> torch.Tensor:
        """``output0`` from the head accumulators: ``acc * scale`` in float32, then the head's own decode."""
        values = {name: torch.from_numpy((acc.astype(np.float64) * scale / divisor).astype(np.float32))
                  for name, acc in heads.items() for scale, divisor in [self.scales[name]]}
        head, info = self.head, self.graph["head"]
        with torch.no_grad():
            if info["type"] == "V5Detect":
                return torch.cat([head.decode_level(values[n], i) for i, n in enumerate(info["outputs"])], -1)
            b = next(iter(values.values())).shape[0]
            boxes = torch.cat([values[n].view(b, 4 * head.reg_max, -1) for n in info["box"]], -1)
            scores = torch.cat([values[n].view(b, head.nc, -1) for n in info["cls"]], -1)
            return head._inference({"boxes": boxes, "scores": scores, "feats": [values[n] for n in info["box"]]})

    def trains(self, codes: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The codes of each distinct train, in the order of ``keys`` (a neuron's codes, pooled or upsampled)."""
        out = []
        for key in self.keys:
            q = codes[key[0]]
            if len(key) > 1:
                q = _apply(torch.from_numpy(q).double(), key[1:]).long().numpy()
            out.append(q)
        return out

    def run(self, images: np.ndarray, constants: EnergyConstants | None = None) -> tuple[np.ndarray, EnergyReport]:
        """``images``: float32 ``[1, 3, H, W]`` in 0..1 (RGB)."""
        values = dict(zip(self.names, self.session.run(None, {"images": images})))
        heads = {o["name"]: values[o["name"]] for o in self.graph["outputs"]}
        codes = {n[len("codes:"):]: v for n, v in values.items() if n.startswith("codes:")}
        return self.decode(heads).numpy(), self.energy.report(self.trains(codes), constants)
