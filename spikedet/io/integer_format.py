"""The integer graph of an integer deployment model: written into and read from its safetensors file.

The graph (``docs/integer-format.md``) is the hardware-readable program: nodes in topological order (``input``,
``conv``, ``neuron``, ``add``, ``concat``, ``maxpool``, ``upsample``, ``time_sum``), the tensors each names,
the head outputs and the float decode's parameters. :func:`graph_document` derives it from a model whose convs
and neurons hold their integer state; :func:`install_graph` puts that state back into a freshly built model.
The model's modules are the one source of the numbers; the graph is how they travel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spikedet.errors import SpikedetError
from spikedet.model.graph import OPS, trace_graph
from spikedet.nn.conv import SpikeConv
from spikedet.nn.integer import IntegerConv
from spikedet.nn.mode import timesteps
from spikedet.snn.integer import IntegerNeuron
from spikedet.snn.neurons import SpikingNeuron

GRAPH_FORMAT = "spikedet-integer-graph"
GRAPH_VERSION = 1
#: The node fields that name a tensor of the file.
TENSOR_FIELDS = ("weight", "bias", "scale", "input_zero", "multiplier", "lut")


def graph_document(model: nn.Module) -> tuple[dict, dict[str, Tensor]]:
    """The graph (JSON-ready) and its tensors, by name, of an integer model."""
    graph = trace_graph(model)
    modules = dict(model.named_modules())
    T = timesteps(model)
    tensors: dict[str, Tensor] = {}
    nodes = []
    for node in graph.nodes:
        entry = {"id": node.id, "op": node.op, "inputs": list(node.inputs)}
        if node.op == "conv":
            entry.update(_conv_entry(node.id, modules[node.id], tensors))
        elif node.op == "neuron":
            entry.update(_neuron_entry(node.id, modules[node.id], tensors))
        elif node.op in ("maxpool", "upsample"):
            entry.update(node.attrs)
        elif node.op == "input":
            entry.update(channels=3, levels=255)
        nodes.append(entry)
    outputs = []
    for name, node_id in graph.outputs:
        source = graph.node(node_id)
        conv = source.inputs[0] if source.op == "time_sum" else source.id
        outputs.append({"name": name, "id": node_id, "scale": f"{conv}.scale",
                        "divisor": T if source.op == "time_sum" else 1})
    document = {"format": GRAPH_FORMAT, "version": GRAPH_VERSION, "T": T,
                "input": {"id": "input", "channels": 3, "levels": 255}, "nodes": nodes, "outputs": outputs,
                "head": _head_entry(graph.head, [o["name"] for o in outputs])}
    return document, tensors


def _conv_entry(name: str, conv: SpikeConv, tensors: dict) -> dict:
    s = conv.integer
    if s is None:
        raise SpikedetError(f"{name}: this conv has no integer form (not an integer model)")
    tensors[f"{name}.weight"] = s.weight
    tensors[f"{name}.bias"] = s.bias
    tensors[f"{name}.scale"] = s.scale.double()
    if s.input_zero is not None:
        tensors[f"{name}.input_zero"] = s.input_zero
    return {"module": name, "weight": f"{name}.weight", "bias": f"{name}.bias", "scale": f"{name}.scale",
            "input_zero": None if s.input_zero is None else f"{name}.input_zero",
            "channels": conv.out_channels, "stride": list(conv.stride), "padding": list(conv.padding),
            "groups": conv.groups,
            "weight_bits": s.weight_bits, "bound": s.bound, "accumulator_bits": 32 if s.bound < 2**31 else 64,
            "image": s.image, "output": s.output}


def _neuron_entry(name: str, neuron: SpikingNeuron, tensors: dict) -> dict:
    s = neuron.integer
    if s is None:
        raise SpikedetError(f"{name}: this neuron has no integer form (not an integer model)")
    c = neuron.code
    tensors[f"{name}.multiplier"] = s.multiplier
    entry = {"module": name, "T": neuron.T, "multiplier": f"{name}.multiplier", "levels": c.levels, "n": c.n,
             "zero": c.zero, "encoding": c.encoding, "rest": c.rest, **s.as_fields()}
    if s.kind == "lut":
        tensors[f"{name}.lut"] = s.lut
        entry["lut"] = f"{name}.lut"
    return entry


def _head_entry(head: nn.Module, names: list[str]) -> dict:
    strides = [float(x) for x in head.stride.tolist()]
    if hasattr(head, "anchor_px"):
        return {"type": "V5Detect", "nc": head.nc, "na": head.na, "strides": strides,
                "anchors": head.anchor_px.flatten(1).tolist(), "outputs": names}
    return {"type": "SpikeDetect", "nc": head.nc, "reg_max": head.reg_max, "strides": strides,
            "box": [n for n in names if n.startswith("box")], "cls": [n for n in names if n.startswith("cls")]}


def check_graph(graph: dict, tensors: dict) -> None:
    """Refuse a graph this spikedet cannot run: wrong format or version, unknown ops, missing tensors."""
    if not isinstance(graph, dict) or graph.get("format") != GRAPH_FORMAT:
        raise SpikedetError("not a spikedet integer graph")
    if graph.get("version") != GRAPH_VERSION:
        raise SpikedetError(f"integer graph version {graph.get('version')!r}: this spikedet reads version "
                            f"{GRAPH_VERSION} only")
    for node in graph.get("nodes", []):
        if node.get("op") not in OPS:
            raise SpikedetError(f"integer graph node {node.get('id')!r}: unknown op {node.get('op')!r}")
        for key in TENSOR_FIELDS:
            name = node.get(key)
            if isinstance(name, str) and name not in tensors:
                raise SpikedetError(f"integer graph node {node['id']!r}: tensor {name!r} is missing")


def install_graph(model: nn.Module, graph: dict, tensors: dict[str, Tensor]) -> None:
    """Give the convs and neurons of ``model`` (built from the same config) their integer state."""
    check_graph(graph, tensors)
    modules = dict(model.named_modules())
    seen = set()
    for node in graph["nodes"]:
        if node["op"] not in ("conv", "neuron"):
            continue
        module = modules.get(node["module"])
        if node["op"] == "conv" and isinstance(module, SpikeConv):
            zero = node.get("input_zero")
            module.set_integer(IntegerConv(tensors[node["weight"]], tensors[node["bias"]].long(),
                                           tensors[node["scale"]].double(), None if zero is None else tensors[zero].long(),
                                           int(node["bound"]), bool(node["image"]), node["output"]))
        elif node["op"] == "neuron" and isinstance(module, SpikingNeuron):
            module.set_integer(_neuron_state(node, tensors))
        else:
            raise SpikedetError(f"integer graph node {node['id']!r} names {node['module']!r}, "
                                "which is not a matching layer of the model")
        seen.add(node["module"])
    missing = [n for n, m in modules.items() if isinstance(m, (SpikeConv, SpikingNeuron)) and n not in seen]
    if missing:
        raise SpikedetError(f"the integer graph does not cover {missing[0]} ({len(missing)} layers)")


def _neuron_state(node: dict, tensors: dict) -> IntegerNeuron:
    multiplier = tensors[node["multiplier"]].long()
    if node["kind"] == "lut":
        return IntegerNeuron("lut", multiplier, int(node["shift"]), levels=int(node["levels"]), lut=tensors[node["lut"]],
                             lut_min=int(node["lut_min"]), grid=float(node.get("grid", 0)))
    leak = node.get("leak") or {"multiplier": 0, "shift": 0}
    return IntegerNeuron("threshold", multiplier, int(node["shift"]), fraction_bits=int(node["fraction_bits"]),
                         levels=int(node["levels"]), rounding=node.get("rounding", "nearest"),
                         leak=(int(leak["multiplier"]), int(leak["shift"])))


def dequantized(model: nn.Module) -> None:
    """Set each integer conv's float weights to what its integers stand for (the model's float path)."""
    for m in model.modules():
        if isinstance(m, SpikeConv) and m.integer is not None:
            s = m.integer
            w = s.weight.double() * s.scale.view(-1, 1, 1, 1) * (255 if s.image else 1)
            bias = s.bias.double() * s.scale
            with torch.no_grad():
                m.weight.data = w.to(m.weight.dtype)
                if m.bias is None:
                    m.bias = nn.Parameter(bias.to(m.weight.dtype), requires_grad=False)
                else:
                    m.bias.data = bias.to(m.bias.dtype)
