"""The integer deployment model: every conv, accumulator and neuron of a spiking detector in integer arithmetic.

:func:`to_integer` takes a trained or converted spiking model (IBRA-LIF, I-LIF, LIF or A2S neurons) and returns
the same network whose convs hold per-output-channel fixed-point weights (int8; int16 for a layer whose int8
weights miss the measured tolerance), int64 biases in accumulator units, and whose neurons turn integer
accumulators into codes with integer operations only (:mod:`spikedet.snn.integer`). What it computes is
specified bit for bit in ``docs/integer-format.md``; the float model is only where it starts from.

How the numbers are chosen:

- **weights**: ``W_int = round(W / s)`` per output channel, ``s = max|W| / 127`` (int8) or ``/ 32767`` (int16),
  ``W`` the converted weights that consume integer codes (the first conv's divided by 255: it reads
  ``round(255 x)``). Convs whose outputs are added (SpikeYOLO's residuals) share ``s`` per channel, so the sum
  of their accumulators is the accumulator of the sum.
- **widths**: int8 unless the conv's output error with int8 weights, ``||y_int8 - y|| / ||y||`` over the sample
  images in float64, exceeds ``tolerance``; then int16 (per group of added convs).
- **neurons**: ``M / 2**S`` approximates ``s_in * N * 2**F`` (threshold neurons: a fixed-point membrane with
  ``F`` fraction bits) or ``s_in * G`` (the A2S SiLU table on a grid of ``G`` steps per unit); ``S`` is the largest
  shift keeping ``M < 2**31`` and ``|acc| * M < 2**61``.
- **bounds**: every accumulator's largest magnitude is proven from the weights and the code ranges; a model
  whose accumulators could reach ``2**53`` (no exact float64 path) is refused, naming the layer.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikedet.convert.bitplane import convert, require_spiking_neurons
from spikedet.errors import SpikedetError
from spikedet.io.integer_format import dequantized
from spikedet.model.graph import Graph, trace_graph
from spikedet.nn.conv import SpikeConv
from spikedet.nn.integer import EXACT_BOUND, IntegerConv
from spikedet.nn.mode import is_converted, is_integer, set_spike_mode, timesteps
from spikedet.snn.integer import IntegerNeuron
from spikedet.snn.neurons import A2SNeuron, SpikingNeuron

QMAX = {8: 127, 16: 32767}


@dataclass(frozen=True)
class IntegerConfig:
    """Settings of the integer conversion (see the module docstring).

    Attributes:
        weight_bits: ``auto`` (int8, int16 where the tolerance needs it), ``8`` or ``16`` everywhere.
        tolerance: the largest relative output error a conv may have with int8 weights (``auto``). 1 %: at 2 %
            the overfit spikeyolo-t lost 0.78 AP points on coco8 (1 %: 0.36), the A2S YOLOv5n 0.25 on coco128
            val2017 (1 %: none); see ``benchmarks/integer_accuracy.py``.
        fraction_bits: ``F``, fraction bits of the threshold neurons' fixed-point membrane.
        lut_grid: ``G``, grid steps per unit of potential of the A2S neurons' tables.
    """

    weight_bits: str = "auto"
    tolerance: float = 0.01
    fraction_bits: int = 16
    lut_grid: int = 256

    def __post_init__(self):
        if str(self.weight_bits) not in ("auto", "8", "16"):
            raise SpikedetError(f"weight_bits must be auto, 8 or 16, got {self.weight_bits!r}")
        if not 0 < self.tolerance < 1:
            raise SpikedetError(f"tolerance must be between 0 and 1, got {self.tolerance!r}")
        if not 1 <= self.fraction_bits <= 24:
            raise SpikedetError(f"fraction_bits must be 1..24, got {self.fraction_bits!r}")
        if not 1 <= self.lut_grid <= 4096:
            raise SpikedetError(f"lut_grid must be 1..4096, got {self.lut_grid!r}")


@dataclass
class LayerChoice:
    """One conv's width and its measured output errors."""

    conv: str
    bits: int
    error_int8: float
    error_int16: float
    bound: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class IntegerReport:
    """What :func:`to_integer` chose and measured."""

    config: dict
    layers: list[LayerChoice] = field(default_factory=list)
    neurons: int = 0
    images: int = 0

    @property
    def int16_layers(self) -> list[str]:
        return [layer.conv for layer in self.layers if layer.bits == 16]

    def as_dict(self) -> dict:
        return {"config": self.config, "neurons": self.neurons, "images": self.images,
                "int16_layers": self.int16_layers, "layers": [layer.as_dict() for layer in self.layers]}


# -- the conversion ---------------------------------------------------------------------------------

@torch.no_grad()
def to_integer(model: nn.Module, images: Tensor, cfg: IntegerConfig | None = None) -> tuple[nn.Module, IntegerReport]:
    """The integer deployment model of ``model`` (float32 shell, exact path) and the report of its choices.

    ``images`` (``[B, 3, H, W]`` in 0..1) are the sample the per-layer errors are measured on; the result does
    not depend on them otherwise.
    """
    cfg = cfg or IntegerConfig()
    require_spiking_neurons(model)
    if is_integer(model):
        raise SpikedetError("the model is already an integer model")
    reference = copy.deepcopy(model).double().eval()
    net = reference if is_converted(reference) else convert(reference, images[:1].double())
    set_spike_mode(net, "integer")
    graph = trace_graph(net)
    modules = dict(net.named_modules())
    groups = scale_groups(graph)
    candidates = {bits: quantize(graph, modules, groups, bits) for bits in (8, 16)}
    errors = {bits: measure_errors(net, images.double(), candidates[bits]) for bits in (8, 16)}
    bits_of = choose_widths(groups, errors, cfg)
    chosen = {conv: candidates[bits_of[conv]][conv] for conv in bits_of}
    report = IntegerReport(asdict(cfg), images=len(images))
    states = integer_states(graph, modules, chosen, cfg)
    for name, state in states.items():
        modules[name].set_integer(state)
        if isinstance(state, IntegerConv):
            report.layers.append(LayerChoice(name, state.weight_bits, errors[8][name], errors[16][name], state.bound))
        else:
            report.neurons += 1
    dequantized(net)
    net = net.float()
    set_spike_mode(net, "exact")
    return net, report


class _UnionFind(dict):
    def find(self, x):
        while self.setdefault(x, x) != x:
            self[x] = self[self[x]]
            x = self[x]
        return x

    def union(self, a, b) -> None:
        self[self.find(b)] = self.find(a)


@dataclass
class ScaleGroups:
    """Which accumulators must share a scale: ``channels`` maps ``(conv, channel)`` to its group's first member
    (channels added together, also through concatenations); ``convs`` maps each conv to its component of convs
    so joined (they get the same weight width)."""

    channels: dict[tuple[str, int], tuple[str, int]]
    convs: dict[str, str]


def scale_groups(graph: Graph) -> ScaleGroups:
    """The :class:`ScaleGroups` of a graph: the sum of accumulators is an accumulator only on a shared scale."""
    channels, convs = _UnionFind(), _UnionFind()
    per_channel: dict[str, list | None] = {}  # per node: (conv, channel) of each channel, None for spike codes
    for node in graph.nodes:
        ins = [per_channel[i] for i in node.inputs]
        if node.op == "conv":
            convs.find(node.id)
            per_channel[node.id] = [(node.id, c) for c in range(node.attrs["channels"])]
            for key in per_channel[node.id]:
                channels.find(key)
        elif node.op in ("input", "neuron"):
            per_channel[node.id] = None
        elif node.op == "concat":
            if any(p is None for p in ins) and not all(p is None for p in ins):
                raise SpikedetError(f"{node.id}: concatenates spike codes with accumulators; no integer form")
            per_channel[node.id] = None if ins[0] is None else [k for p in ins for k in p]
        elif node.op == "add":
            if any(p is None for p in ins):
                if not all(p is None for p in ins):
                    raise SpikedetError(f"{node.id}: adds spike codes to accumulators; no integer form")
                per_channel[node.id] = None
                continue
            for other in ins[1:]:
                for a, b in zip(ins[0], other):
                    channels.union(a, b)
                    convs.union(a[0], b[0])
            per_channel[node.id] = ins[0]
        else:
            per_channel[node.id] = ins[0]
    return ScaleGroups({k: channels.find(k) for k in list(channels)}, {c: convs.find(c) for c in list(convs)})


def _folded(conv: SpikeConv, image: bool) -> tuple[Tensor, Tensor]:
    """The conv's weight and bias as they act on its integer input (codes, or ``round(255 x)``)."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64)
    return (w / 255 if image else w), b


def quantize(graph: Graph, modules: dict, groups: ScaleGroups, bits: int) -> dict[str, dict]:
    """Per conv: ``weight`` (int), ``bias`` (int64), ``scale`` (float64), ``input_zero``, ``image``."""
    qmax = QMAX[bits]
    images = {n.id: n.inputs == ["input"] for n in graph.nodes if n.op == "conv"}
    folded = {c: _folded(modules[c], images[c]) for c in groups.convs}
    peaks = {c: folded[c][0].abs().flatten(1).amax(1).tolist() for c in groups.convs}
    shared: dict[tuple[str, int], float] = {}
    for key, root in groups.channels.items():
        shared[root] = max(shared.get(root, 0.0), peaks[key[0]][key[1]])
    out = {}
    for conv in groups.convs:
        w, b = folded[conv]
        peak = torch.tensor([shared[groups.channels[(conv, c)]] for c in range(w.shape[0])], dtype=torch.float64)
        scale = torch.where(peak > 0, peak / qmax, torch.ones_like(peak))  # an all-zero channel: any scale
        w_int = torch.round(w / scale.view(-1, 1, 1, 1)).clamp_(-qmax, qmax)
        conversion = modules[conv].conversion
        zero = None if conversion is None or conversion.zero_codes is None else conversion.zero_codes.round().long()
        out[conv] = {"weight": w_int.to(torch.int8 if bits == 8 else torch.int16), "bias": torch.round(b / scale).long(),
                     "scale": scale, "input_zero": zero, "image": images[conv]}
    return out


def measure_errors(net: nn.Module, images: Tensor, quantized: dict[str, dict]) -> dict[str, float]:
    """Per conv: ``||y_q - y|| / ||y||`` on ``images``, ``y`` the float64 model's output, ``y_q`` the same conv
    with the quantized weights and bias on the same input."""
    sums: dict[str, list[float]] = {c: [0.0, 0.0] for c in quantized}
    handles = []
    for name, q in quantized.items():
        conv = net.get_submodule(name)

        def hook(mod, args, y, name=name, q=q):
            x = mod.integer_input(args[0])
            if q["input_zero"] is not None:
                x = x - q["input_zero"].double().view(-1, 1, 1)
            w = q["weight"].double() * q["scale"].view(-1, 1, 1, 1)
            y_q = F.conv2d(x, w, q["bias"].double() * q["scale"], mod.stride, mod.padding, 1, mod.groups)
            sums[name][0] += float(((y_q - y) ** 2).sum())
            sums[name][1] += float((y ** 2).sum())

        handles.append(conv.register_forward_hook(hook))
    try:
        for i in range(len(images)):
            net(images[i : i + 1])
    finally:
        for h in handles:
            h.remove()
    return {c: math.sqrt(e / s) if s > 0 else 0.0 for c, (e, s) in sums.items()}


def choose_widths(groups: ScaleGroups, errors: dict[int, dict[str, float]], cfg: IntegerConfig) -> dict[str, int]:
    """int16 for every conv of a component where one conv's int8 error exceeds the tolerance (``auto``); a conv
    whose error exceeds it at the width it gets is refused, naming the conv."""
    if str(cfg.weight_bits) != "auto":
        chosen = {c: int(cfg.weight_bits) for c in groups.convs}
    else:
        wide = {root for c, root in groups.convs.items() if errors[8][c] > cfg.tolerance}
        chosen = {c: 16 if root in wide else 8 for c, root in groups.convs.items()}
    for conv, bits in chosen.items():
        if errors[bits][conv] > cfg.tolerance:
            hint = "; weight_bits=auto gives it int16" if bits == 8 else ""
            raise SpikedetError(f"{conv}: int{bits} weights change its output by {errors[bits][conv]:.2%} "
                                f"(relative, on the sample images), above the tolerance {cfg.tolerance:.2%}{hint}")
    return chosen


# -- bounds and neurons -----------------------------------------------------------------------------

def integer_states(graph: Graph, modules: dict, chosen: dict[str, dict], cfg: IntegerConfig) -> dict:
    """The :class:`IntegerConv` and :class:`IntegerNeuron` of every conv and neuron, with proven bounds."""
    T = timesteps(modules[""])  # "" is the root module
    value_convs = {output_conv(graph, node_id) for _, node_id in graph.outputs}
    ranges: dict[str, tuple[int, int]] = {}
    scales: dict[str, Tensor | None] = {}
    states: dict = {}
    for node in graph.nodes:
        ins = node.inputs
        if node.op == "input":
            ranges[node.id], scales[node.id] = (0, 255), None
        elif node.op == "conv":
            q = chosen[node.id]
            bound = conv_bound(q, ranges[ins[0]], modules[node.id].groups)
            if bound >= EXACT_BOUND:
                raise SpikedetError(f"{node.id}: its accumulators could reach {bound:.3g} >= 2**53 (weights x code "
                                    "range): no exact integer form; use int8 weights or smaller codes")
            states[node.id] = IntegerConv(q["weight"], q["bias"], q["scale"], q["input_zero"], bound, q["image"],
                                          "value" if node.id in value_convs else "accumulator")
            ranges[node.id], scales[node.id] = (-bound, bound), q["scale"]
        elif node.op == "neuron":
            neuron = modules[node.id]
            if scales[ins[0]] is None:
                raise SpikedetError(f"{node.id}: a neuron fed by spike codes instead of accumulators")
            states[node.id] = integer_neuron(node.id, neuron, scales[ins[0]], max(abs(v) for v in ranges[ins[0]]), cfg)
            ranges[node.id], scales[node.id] = (0, neuron.code.levels), None
        elif node.op == "add":
            ranges[node.id] = (sum(ranges[i][0] for i in ins), sum(ranges[i][1] for i in ins))
            scales[node.id] = scales[ins[0]]
        elif node.op == "concat":
            ranges[node.id] = (min(ranges[i][0] for i in ins), max(ranges[i][1] for i in ins))
            parts = [scales[i] for i in ins]
            scales[node.id] = None if any(p is None for p in parts) else torch.cat(parts)
        elif node.op == "time_sum":
            ranges[node.id], scales[node.id] = (ranges[ins[0]][0] * T, ranges[ins[0]][1] * T), scales[ins[0]]
        else:  # maxpool, upsample
            ranges[node.id], scales[node.id] = ranges[ins[0]], scales[ins[0]]
        if max(abs(v) for v in ranges[node.id]) >= EXACT_BOUND:
            raise SpikedetError(f"{node.id}: values could reach 2**53: no exact integer form")
    return states


def output_conv(graph: Graph, node_id: str) -> str:
    """The conv whose accumulators an output is (through the head's sum over time)."""
    node = graph.node(node_id)
    if node.op == "time_sum":
        node = graph.node(node.inputs[0])
    if node.op != "conv":
        raise SpikedetError(f"the head output {node_id} is not a conv's accumulators")
    return node.id


def conv_bound(q: dict, value_range: tuple[int, int], groups: int) -> int:
    """``max_o (|bias[o]| + sum |W[o]| * max |x - zero|)``: bounds ``|acc|`` and every partial sum of it in any
    order (``docs/integer-format.md`` section 7; the float32 paths rely on the latter)."""
    lo, hi = value_range
    w = q["weight"].long().abs().sum((2, 3))  # [C_out, C_in / groups]
    zero = q["input_zero"] if q["input_zero"] is not None else torch.zeros(w.shape[1] * groups, dtype=torch.long)
    reach = torch.maximum(hi - zero, zero - lo).clamp_min(0)  # [C_in]
    per_group = reach.view(groups, -1)[torch.arange(w.shape[0]) // (w.shape[0] // groups)]
    return int(((w * per_group).sum(1) + q["bias"].abs()).max())


def _shift(real: Tensor, bound: int) -> int:
    peak = float(real.abs().max())
    for s in range(62, 0, -1):
        if peak * 2**s < 2**31 and bound * peak * 2**s < 2**61:
            return s
    raise SpikedetError(f"requantization multiplier {peak:.3g} is too large for 31 bits")


def integer_neuron(name: str, neuron: SpikingNeuron, scale_in: Tensor, bound: int, cfg: IntegerConfig) -> IntegerNeuron:
    c = neuron.code
    if isinstance(neuron, A2SNeuron):
        if neuron.scale is not None:
            raise SpikedetError(f"{name}: A2S neurons with per-channel scales have no integer form yet")
        real = scale_in * cfg.lut_grid
        shift = _shift(real, bound)
        lut, lut_min = silu_table(neuron, cfg.lut_grid)
        return IntegerNeuron("lut", torch.round(real * 2**shift).long(), shift, levels=c.levels, lut=lut, lut_min=lut_min,
                             grid=float(cfg.lut_grid))
    sigma = neuron.scale.double() if neuron.scale is not None else torch.ones_like(scale_in)
    if c.zero:
        raise SpikedetError(f"{name}: threshold neurons with a zero offset have no integer form yet")
    f = cfg.fraction_bits
    real = scale_in * c.n * 2**f / sigma
    shift = _shift(real, bound)
    # alpha = a / 2**s with the smallest s that makes it exact (0.25 -> 1 / 2**2), else rounded at s = 16
    leak_shift = next((s for s in range(17) if float(neuron.alpha * 2**s).is_integer()), 16)
    leak = (round(neuron.alpha * 2**leak_shift), leak_shift)
    multiplier = torch.round(real * 2**shift).long()
    check_membrane(name, neuron.T, bound, int(multiplier.abs().max()), shift, f, c.levels, leak)
    return IntegerNeuron("threshold", multiplier, shift, fraction_bits=f, levels=c.levels,
                         rounding=neuron.rounding, leak=leak if neuron.T > 1 else (0, 0))


def check_membrane(name: str, T: int, bound: int, multiplier: int, shift: int, f: int, levels: int,
                   leak: tuple[int, int]) -> None:
    """Refuse a threshold neuron whose fixed-point membrane could overflow int64 over ``T`` timesteps: the grid
    input, the membrane and the leak's product ``(U - q * 2**F) * a`` stay below ``2**62``."""
    j = (bound * multiplier + (1 << (shift - 1))) // (1 << shift) + 1
    u = j
    a, s = leak
    for _ in range(1, T):
        product = (u + levels * (1 << f)) * a
        if product >= 2**62:
            break
        u = product // (1 << s) + 1 + j
    else:
        if j < 2**62 and u < 2**62:
            return
    raise SpikedetError(f"{name}: its fixed-point membrane could exceed 2**62 over T={T} timesteps (input bound "
                        f"{bound}); use fewer fraction bits or smaller codes")


def silu_table(neuron: A2SNeuron, grid: int) -> tuple[Tensor, int]:
    """The A2S neuron's codes at every grid point ``J / grid`` where they change, and the first point's index."""
    c = neuron.code
    top = math.ceil(((c.levels - c.zero + 1) / c.n + 2) * grid)
    j = torch.arange(-64 * grid, top + 1, dtype=torch.int64)
    codes = neuron.codes_of(j.double().view(1, -1, 1, 1) / grid).flatten().long()
    changes = torch.nonzero(codes[1:] != codes[:-1]).flatten()
    if not len(changes):
        raise SpikedetError("an A2S neuron whose codes never change")
    first, last = int(changes[0]), int(changes[-1]) + 1  # keep one constant entry at each end
    if codes[0] != c.zero or codes[-1] != c.levels:
        raise SpikedetError("the A2S table does not reach its constant ends")  # pragma: no cover
    return codes[first : last + 1].to(torch.int16 if c.levels < 2**15 else torch.int32), int(j[first])
