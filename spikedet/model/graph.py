"""The dataflow graph of a spikedet network: which conv, neuron, add, concat, pool and upsample feeds which.

:func:`trace_graph` reads it with ``torch.fx`` from the model's own forward code (convs, neurons and heads as
leaves; :mod:`spikedet.nn.ops` functions as single nodes), so any block built from spikedet's layers is
covered without a per-block description. Time folding (``flatten`` / ``unflatten`` of ``[T, B, ...]``) and
the repeat of the image over time are layout, not nodes: every tensor of the graph is ``[T*B, C, H, W]``,
time-major. Detection heads are expanded into their convs (YOLOv5's) or spiking branches (SpikeYOLO's), whose
outputs are the graph's outputs.

    >>> from spikedet.model.detection import SpikeDetectionModel
    >>> graph = trace_graph(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval().reparameterize())
    >>> graph.count("conv"), graph.count("neuron"), [name for name, _ in graph.outputs][:2]
    (89, 88, ['box0', 'box1'])
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import cached_property

import torch.fx as fx
from torch import nn
from ultralytics.nn.modules.head import Detect

from spikedet.errors import SpikedetError
from spikedet.nn import ops
from spikedet.nn.conv import SpikeConv
from spikedet.nn.layers import TimeRepeat
from spikedet.snn.neurons import SpikingNeuron

OPS = ("input", "conv", "neuron", "add", "concat", "maxpool", "upsample", "time_sum")


@dataclass
class Node:
    """One operation: ``id`` (a module name for convs and neurons), ``op`` (one of :data:`OPS`), its input ids."""

    id: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)


@dataclass
class Graph:
    """Nodes in topological order and the outputs ``(name, node id)`` the head decodes."""

    nodes: list[Node]
    outputs: list[tuple[str, str]]
    head: nn.Module

    def node(self, node_id: str) -> Node:
        return self._index[node_id]

    @cached_property
    def _index(self) -> dict[str, Node]:  # built once: the graph is not changed after tracing
        return {n.id: n for n in self.nodes}

    def count(self, op: str) -> int:
        return sum(n.op == op for n in self.nodes)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, name: str) -> bool:
        return isinstance(m, (SpikeConv, SpikingNeuron, TimeRepeat, Detect)) or super().is_leaf_module(m, name)


class _Layers(nn.Module):
    """The layer loop of a detection model (Ultralytics' ``_predict_once`` without its options), traceable."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.model  # same attribute name: traced module names are the model's own
        self.save = model.save

    def forward(self, x):
        saved = []
        for m in self.model:
            if m.f != -1:
                x = saved[m.f] if isinstance(m.f, int) else [x if j == -1 else saved[j] for j in m.f]
            x = m(x)
            saved.append(x if m.i in self.save else None)
        return x


_FUNCTIONS = {ops.add: "add", ops.cat: "concat", ops.maxpool: "maxpool", ops.upsample: "upsample"}
_LAYOUT_METHODS = ("flatten", "unflatten", "contiguous")
_SHAPE_FUNCTIONS = (getattr, operator.getitem)


class _Builder:
    def __init__(self, root: nn.Module):
        self.root = root
        self.nodes: list[Node] = [Node("input", "input")]
        self.outputs: list[tuple[str, str]] = []
        self.counter = 0

    def add(self, op: str, inputs: list[str], node_id: str | None = None, **attrs) -> str:
        if node_id is None:
            node_id = f"{op}{self.counter}"
            self.counter += 1
        self.nodes.append(Node(node_id, op, inputs, attrs))
        return node_id

    def walk(self, graph: fx.Graph, prefix: str, env: dict) -> str | list | None:
        """Add the nodes of one traced graph; ``env`` maps fx nodes to ids (placeholders pre-filled)."""
        result = None
        for n in graph.nodes:
            if n.op == "placeholder":
                env.setdefault(n, "input")
            elif n.op == "call_module":
                env[n] = self.module(prefix + n.target, n, env)
            elif n.op == "call_function":
                env[n] = self.function(n, env)
            elif n.op == "call_method":
                env[n] = self.method(n, env)
            elif n.op == "output":
                result = env.get(n.args[0])
            else:  # pragma: no cover - get_attr: parameters read directly by a forward
                raise SpikedetError(f"unsupported graph node {n.op} {n.target}")
        return result

    def module(self, name: str, n: fx.Node, env: dict):
        m = self.root.get_submodule(name)
        if isinstance(m, TimeRepeat):
            return env[n.args[0]]
        if isinstance(m, SpikeConv):
            return self.add("conv", [env[n.args[0]]], name, channels=m.out_channels)
        if isinstance(m, SpikingNeuron):
            return self.add("neuron", [env[n.args[0]]], name)
        if isinstance(m, Detect):
            return self.head(name, m, [env[a] for a in n.args[0]])
        raise SpikedetError(f"{name}: {type(m).__name__} has no integer form")  # pragma: no cover

    def function(self, n: fx.Node, env: dict):
        op = _FUNCTIONS.get(n.target)
        if op is None:
            if n.target in _SHAPE_FUNCTIONS:  # shape arithmetic (x.shape[0]) only feeds layout methods
                return None
            raise SpikedetError(f"the integer graph has no form for {getattr(n.target, '__name__', n.target)!r}: "
                                "combine tensors through spikedet.nn.ops")
        if op == "add":
            return self.add("add", [env[a] for a in n.args])
        if op == "concat":
            return self.add("concat", [env[a] for a in n.args[0]])
        x, *rest = n.args
        if op == "maxpool":
            k = rest[0] if rest else n.kwargs["k"]
            stride = rest[1] if len(rest) > 1 else n.kwargs.get("stride", 1)
            padding = rest[2] if len(rest) > 2 else n.kwargs.get("padding")
            return self.add("maxpool", [env[x]], kernel=int(k), stride=int(stride),
                            padding=int(k) // 2 if padding is None else int(padding))
        scale = rest[0] if rest else n.kwargs.get("scale", 2)
        return self.add("upsample", [env[x]], scale=int(scale))

    def method(self, n: fx.Node, env: dict):
        if n.target in _LAYOUT_METHODS:
            return env[n.args[0]]
        if n.target == "mean" and (n.args[1:] == (0,) or n.kwargs.get("dim") == 0):
            return self.add("time_sum", [env[n.args[0]]])
        raise SpikedetError(f"the integer graph has no form for the tensor method {n.target!r}")

    def head(self, name: str, head: Detect, feats: list[str]) -> None:
        if hasattr(head, "m") and hasattr(head, "anchor_px"):  # YOLOv5's: one 1x1 conv per level
            for i, f in enumerate(feats):
                conv = head.m[i]
                self.outputs.append((f"p{i}", self.add("conv", [f], f"{name}.m.{i}", channels=conv.out_channels)))
            return None
        for branch, role in (("cv2", "box"), ("cv3", "cls")):
            for i, f in enumerate(feats):
                prefix = f"{name}.{branch}.{i}."
                module = self.root.get_submodule(prefix[:-1])
                traced = _Tracer().trace(module)
                placeholder = next(p for p in traced.nodes if p.op == "placeholder")
                out = self.walk(traced, prefix, {placeholder: f})
                if self.node_of(out).op != "time_sum":
                    out = self.add("time_sum", [out])
                self.outputs.append((f"{role}{i}", out))
        return None

    def node_of(self, node_id: str) -> Node:
        return next(n for n in reversed(self.nodes) if n.id == node_id)


def trace_graph(model: nn.Module) -> Graph:
    """The :class:`Graph` of a re-parameterized spikedet detection model (``SpikeDetectionModel``)."""
    layers = _Layers(model)
    builder = _Builder(layers)
    builder.walk(_Tracer().trace(layers), "", {})
    head = model.model[-1]
    if not builder.outputs:
        raise SpikedetError("the model has no detection head the integer graph can read")
    return Graph(builder.nodes, builder.outputs, head)
