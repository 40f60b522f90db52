"""Reference interpreter of the spikedet integer graph, version 1 (``docs/integer-format.md``): NumPy int64 only.

This file is the executable form of the format, meant to be read and ported: it imports nothing from spikedet and
no torch. One function per op, each docstring stating the op's formula; every division by a power of two is a
floor division written as ``>>``, NumPy's arithmetic right shift on int64. Every node is checked as it runs
(op, fields, tensor names, dtypes and shapes, the converter's overflow ``bound``): a bad file raises a
``ValueError`` naming the node. Smoke test: ``python -m spikedet.integer_reference MODEL.safetensors IMAGES.npy``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

FORMAT, VERSION = "spikedet-integer-graph", 1
PATCH_ELEMENTS = 1 << 23  # im2col rows are built in chunks of about this many int64 elements (64 MiB)


@dataclass
class Result:
    """What :func:`run` returns: every neuron node's codes, the graph outputs, and their real values."""

    codes: dict[str, np.ndarray]  # neuron node id -> int64 codes [T*B, C, H, W]
    outputs: dict[str, np.ndarray]  # output name -> int64 accumulators
    values: dict[str, np.ndarray]  # output name -> float64 acc * scale[c] / divisor


def load(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read an integer model file: the ``graph`` of its ``"spikedet"`` metadata JSON and every tensor."""
    from safetensors import SafetensorError, safe_open

    try:
        f = safe_open(str(path), "numpy")
    except SafetensorError as e:
        raise ValueError(f"{path}: not a safetensors file ({e})") from None
    with f:
        metadata = f.metadata() or {}
        if "spikedet" not in metadata:
            raise ValueError(f"{path}: no 'spikedet' metadata: not a spikedet model file")
        config = json.loads(metadata["spikedet"])
        if "graph" not in config:
            raise ValueError(f"{path}: its spikedet metadata has no integer 'graph' (convert the model first)")
        names = f.keys()
        return config["graph"], {name: f.get_tensor(name) for name in names}


# -- the ops: plain functions of int64 arrays ---------------------------------------------------------------------


def input_codes(images: np.ndarray, T: int) -> np.ndarray:
    """``q = round(x * 255)`` (float32 product, round half to even: exact for x = k/255), uint8 images as they
    are; repeated T times time-major: row ``t*B + b`` is image b -> int64 ``[T*B, 3, H, W]``."""
    if images.dtype == np.uint8:
        q = images.astype(np.int64)
    elif images.dtype == np.float32:
        if images.size and not (images.min() >= 0 and images.max() <= 1):
            raise ValueError("float32 images must lie in [0, 1]")
        q = np.rint(images * np.float32(255)).astype(np.int64)
    else:
        raise ValueError(f"images must be float32 in [0, 1] or uint8, got {images.dtype}")
    return np.concatenate([q] * T, axis=0)


def conv(x, weight, bias, input_zero, stride, padding, groups) -> np.ndarray:
    """``acc[n,o,y,x] = bias[o] + sum_{c in group(o), i, j} W[o,c',i,j] * xz[n, c, y*sh-ph+i, x*sw-pw+j]`` with
    ``xz = X - input_zero[c]`` inside the image and 0 outside (padding after removing the offset); dilation 1.
    Computed as im2col (channels-last windows) times the weights, exact in int64."""
    (sh, sw), (ph, pw) = stride, padding
    cout, cin_group, kh, kw = weight.shape
    xz = x if input_zero is None else x - input_zero[None, :, None, None]
    xz = np.pad(xz.transpose(0, 2, 3, 1), ((0, 0), (ph, ph), (pw, pw), (0, 0)))  # [N, H+2ph, W+2pw, C]
    windows = sliding_window_view(xz, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # [N, Ho, Wo, C, kh, kw]
    n, ho, wo = windows.shape[:3]
    w = weight.astype(np.int64).reshape(groups, cout // groups, cin_group * kh * kw)
    out = np.empty((n, ho, wo, cout), np.int64)
    rows = max(1, PATCH_ELEMENTS // max(1, n * wo * windows[0, 0, 0].size))
    for y in range(0, ho, rows):
        patches = windows[:, y : y + rows].reshape(-1, groups, cin_group * kh * kw)  # copies one chunk
        out[:, y : y + rows] = np.einsum("mgk,gok->mgo", patches, w).reshape(n, -1, wo, cout)
    out += bias
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def add(xs: list[np.ndarray]) -> np.ndarray:
    """``out = x_0 + x_1 + ...`` elementwise."""
    return sum(xs[1:], xs[0].copy())


def concat(xs: list[np.ndarray]) -> np.ndarray:
    """Concatenation along channels (axis 1), in the order given."""
    return np.concatenate(xs, axis=1)


def maxpool(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """2-D max pooling (output ``floor((H + 2p - k) / s) + 1``); padded positions are never selected."""
    lowest = np.iinfo(np.int64).min  # stands for -infinity: every window holds a real element since p <= k/2
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=lowest)
    windows = sliding_window_view(padded, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


def upsample(x: np.ndarray, scale: int) -> np.ndarray:
    """Nearest neighbour: ``out[n, c, y, x] = in[n, c, y // s, x // s]``."""
    return x.repeat(scale, axis=2).repeat(scale, axis=3)


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: int) -> np.ndarray:
    """Neuron step 1: ``J = floor((I * multiplier[c] + 2**(S-1)) / 2**S)`` (round half up onto the grid)."""
    return (acc * multiplier[None, :, None, None] + (1 << (shift - 1))) >> shift


def threshold_neuron(J, T: int, fraction_bits: int, rounding: str, leak_multiplier: int, leak_shift: int, levels):
    """IBRA-LIF / I-LIF / LIF on a grid of ``1 / (N * 2**F)``, with ``R = 2**(F-1)`` ("nearest") or 0 ("floor"):
    ``U[0] = J[0]``, ``U[t] = floor((U[t-1] - q[t-1] * 2**F) * a / 2**s) + J[t]``,
    ``q[t] = clip(floor((U[t] + R) / 2**F), 0, L)``. ``J`` is time-major ``[T*B, ...]``."""
    F, R = fraction_bits, (1 << (fraction_bits - 1)) if rounding == "nearest" else 0
    steps = J.reshape(T, -1, *J.shape[1:])
    codes = np.empty_like(steps)
    u = steps[0]
    for t in range(T):
        if t:
            u = (((u - (codes[t - 1] << F)) * leak_multiplier) >> leak_shift) + steps[t]
        codes[t] = np.clip((u + R) >> F, 0, levels)
    return codes.reshape(J.shape)


def lut_neuron(J: np.ndarray, lut: np.ndarray, lut_min: int) -> np.ndarray:
    """A2S neuron: ``q = lut[clip(J - m, 0, K - 1)]``."""
    return lut.astype(np.int64)[np.clip(J - lut_min, 0, len(lut) - 1)]


def time_sum(x: np.ndarray, T: int) -> np.ndarray:
    """``out[b] = sum_t in[t*B + b]``: ``[T*B, C, H, W] -> [B, C, H, W]``."""
    return x.reshape(T, -1, *x.shape[1:]).sum(axis=0)


# -- reading nodes: fields, tensors and bounds checked, errors naming the node ------------------------------------


class _Node:
    def __init__(self, node: dict, tensors: dict[str, np.ndarray]):
        self.node, self.tensors = node, tensors
        self.name = f"node {node.get('id')!r} ({node.get('op')})"

    def fail(self, message: str):
        raise ValueError(f"{self.name}: {message}")

    def field(self, key: str, kind=int, minimum=None):
        value = self.node.get(key)
        if kind is int and type(value) is not int:
            self.fail(f"field {key!r} must be an integer, got {value!r}")
        if kind is list and not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            self.fail(f"field {key!r} must be a pair of integers, got {value!r}")
        if minimum is not None and min(value if kind is list else [value]) < minimum:
            self.fail(f"field {key!r} must be >= {minimum}, got {value!r}")
        return value

    def tensor(self, key: str, dtypes: tuple[str, ...], shape=None, *, optional=False, tname=None):
        tname = self.node.get(key) if tname is None else tname
        if tname is None and optional:
            return None
        if not isinstance(tname, str) or tname not in self.tensors:
            self.fail(f"tensor {key}={tname!r} is missing from the file")
        t = self.tensors[tname]
        if t.dtype.name not in dtypes:
            self.fail(f"tensor {key}={tname!r} has dtype {t.dtype.name}, expected {' or '.join(dtypes)}")
        if shape is not None and tuple(t.shape) != tuple(shape):
            self.fail(f"tensor {key}={tname!r} has shape {list(t.shape)}, expected {list(shape)}")
        return t


def _run_conv(nd: _Node, xs: list[np.ndarray], T: int) -> np.ndarray:
    x, g = xs[0], nd.field("groups", minimum=1)
    cin = x.shape[1]
    weight = nd.tensor("weight", ("int8", "int16"))
    if weight.ndim != 4 or cin % g or weight.shape[0] % g or weight.shape[1] * g != cin:
        nd.fail(f"weight shape {list(weight.shape)} does not fit {cin} input channels in {g} groups")
    cout, (kh, kw) = weight.shape[0], weight.shape[2:]
    bias = nd.tensor("bias", ("int64",), (cout,))
    zero = nd.tensor("input_zero", ("int64",), (cin,), optional=True)
    nd.tensor("scale", ("float64",), (cout,))
    stride, padding = nd.field("stride", list, 1), nd.field("padding", list, 0)
    if x.shape[2] + 2 * padding[0] < kh or x.shape[3] + 2 * padding[1] < kw:
        nd.fail(f"kernel {kh}x{kw} is larger than its padded input {list(x.shape[2:])}")
    bound, bits = nd.field("bound", minimum=0), nd.field("accumulator_bits")
    if bits != (32 if bound < 2**31 else 64) or bound >= 2**63:
        nd.fail(f"accumulator_bits {bits} does not match bound {bound} (32 if bound < 2**31 else 64, bound < 2**63)")
    # int64 cannot wrap here: the largest possible |acc| for these inputs, in Python integers.
    xz_max = int(np.abs(x).max(initial=0)) + (0 if zero is None else int(np.abs(zero).max(initial=0)))
    w_max = int(np.abs(weight.astype(np.int64)).reshape(cout, -1).sum(axis=1).max())
    if xz_max * w_max + int(np.abs(bias).max()) >= 2**63:
        nd.fail("its accumulator could overflow int64 on this input")
    acc = conv(x, weight, bias, zero, stride, padding, g)
    if acc.size and int(np.abs(acc).max()) > bound:
        nd.fail(f"|acc| reaches {int(np.abs(acc).max())}, above its proven bound {bound}: the file is wrong")
    return acc


def _run_neuron(nd: _Node, xs: list[np.ndarray], T: int) -> np.ndarray:
    if nd.field("T", minimum=1) != T:
        nd.fail(f"T={nd.node['T']} differs from the graph's T={T}")
    x, levels, shift = xs[0], nd.field("levels", minimum=1), nd.field("shift", minimum=1)
    multiplier = nd.tensor("multiplier", ("int64",), (x.shape[1],))
    if int(np.abs(x).max(initial=0)) * int(np.abs(multiplier).max(initial=0)) + 2 ** (shift - 1) >= 2**63:
        nd.fail("I * multiplier could overflow int64 on this input")
    J = requantize(x, multiplier, shift)
    kind = nd.node.get("kind")
    if kind == "threshold":
        F, rounding = nd.field("fraction_bits", minimum=1), nd.node.get("rounding")
        if rounding not in ("nearest", "floor"):
            nd.fail(f"rounding must be 'nearest' or 'floor', got {rounding!r}")
        leak = nd.node.get("leak") or ({"multiplier": 0, "shift": 0} if T == 1 else {})  # T == 1 never reads it
        a, s = (leak.get("multiplier"), leak.get("shift")) if isinstance(leak, dict) else (None, None)
        if not (type(a) is int and type(s) is int and s >= 0):
            nd.fail(f"leak must be {{'multiplier': int, 'shift': int >= 0}}, got {nd.node.get('leak')!r}")
        u_max = j_max = int(np.abs(J).max(initial=0))
        for _ in range(T - 1):  # |U[t]| <= |J| + |a| * (|U[t-1]| + L * 2**F) / 2**s + 1; the product must fit
            if (u_max + (levels << F)) * abs(a) >= 2**63:
                nd.fail("the leak product (U - q * 2**F) * a could overflow int64 on this input")
            u_max = j_max + ((u_max + (levels << F)) * abs(a) >> s) + 1
        return threshold_neuron(J, T, F, rounding, a, s, levels)
    if kind == "lut":
        if T != 1:
            nd.fail(f"a lut neuron needs T == 1, the graph has T={T}")
        lut = nd.tensor("lut", ("int16",))
        if lut.ndim != 1 or not len(lut) or lut.min() < 0 or lut.max() > levels:
            nd.fail(f"lut must be a non-empty 1-D table of codes in 0..{levels}")
        return lut_neuron(J, lut, nd.field("lut_min"))
    nd.fail(f"kind must be 'threshold' or 'lut', got {kind!r}")


def _run_maxpool(nd: _Node, xs: list[np.ndarray], T: int) -> np.ndarray:
    x, k, s, p = xs[0], nd.field("kernel", minimum=1), nd.field("stride", minimum=1), nd.field("padding", minimum=0)
    if p > k // 2 or min(x.shape[2:]) + 2 * p < k:
        nd.fail(f"padding {p} must be <= kernel // 2 and the padded input at least {k} wide")
    return maxpool(x, k, s, p)


def _run_add(nd: _Node, xs: list[np.ndarray], T: int) -> np.ndarray:
    if len({x.shape for x in xs}) != 1:
        nd.fail(f"inputs have different shapes {[list(x.shape) for x in xs]}")
    return add(xs)


def _run_concat(nd: _Node, xs: list[np.ndarray], T: int) -> np.ndarray:
    if len({(x.shape[0], *x.shape[2:]) for x in xs}) != 1:
        nd.fail(f"inputs differ in more than channels: {[list(x.shape) for x in xs]}")
    return concat(xs)


#: op -> (how many inputs: a number, or None for one or more; its step, called as step(node, inputs, T))
OPS = {
    "conv": (1, _run_conv),
    "neuron": (1, _run_neuron),
    "add": (None, _run_add),
    "concat": (None, _run_concat),
    "maxpool": (1, _run_maxpool),
    "upsample": (1, lambda nd, xs, T: upsample(xs[0], nd.field("scale", minimum=1))),
    "time_sum": (1, lambda nd, xs, T: time_sum(xs[0], T)),
}
TIME_MAJOR_INPUT = ("neuron", "time_sum")  # ops whose input must still hold all T timesteps


def _check_graph(graph: dict) -> int:
    """The header, and every node a dict with a unique string id, an op, and a list of earlier nodes' ids."""
    if not isinstance(graph, dict) or graph.get("format") != FORMAT or graph.get("version") != VERSION:
        found = f"format={graph.get('format')!r} version={graph.get('version')!r}" if isinstance(graph, dict) else ""
        raise ValueError(f"not a {FORMAT} version {VERSION} graph {found}")
    T, spec = graph.get("T"), graph.get("input")
    if type(T) is not int or T < 1:
        raise ValueError(f"graph T must be an integer >= 1, got {T!r}")
    if not isinstance(spec, dict) or (spec.get("id"), spec.get("channels"), spec.get("levels")) != ("input", 3, 255):
        raise ValueError(f"graph input must be id 'input', channels 3, levels 255 in version {VERSION}, got {spec!r}")
    nodes, seen = graph.get("nodes"), set()
    if type(nodes) is not list or type(graph.get("outputs")) is not list:
        raise ValueError("graph nodes and outputs must be lists")
    for k, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or node["id"] in seen:
            raise ValueError(f"node {k} of the graph must be an object with a unique string id, got {node!r:.80}")
        nd = _Node(node, {})
        if (node.get("op") == "input") != (node["id"] == "input"):
            nd.fail("the one input node has id 'input' and op 'input'")
        inputs = node.get("inputs", [])
        if not isinstance(inputs, list) or not all(isinstance(i, str) and i in seen for i in inputs):
            nd.fail(f"inputs {inputs!r} must name earlier nodes (nodes are in topological order)")
        seen.add(node["id"])
    if "input" not in seen:
        raise ValueError("graph has no input node (id 'input', op 'input')")
    return T


def run(graph: dict, tensors: dict[str, np.ndarray], images: np.ndarray) -> Result:
    """Run the integer program on ``images`` (float32 ``[B, 3, H, W]`` in [0, 1], or uint8 codes)."""
    T = _check_graph(graph)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W], got shape {list(images.shape)}")
    nodes, outputs = graph["nodes"], graph["outputs"]
    kept = {n["id"] for n in nodes if n.get("op") == "neuron"} | {o.get("id") for o in outputs if isinstance(o, dict)}
    last_use = {i: k for k, n in enumerate(nodes) for i in n.get("inputs", [])}
    values: dict[str, np.ndarray] = {}
    for k, node in enumerate(nodes):
        nd, op, inputs = _Node(node, tensors), node.get("op"), node.get("inputs", [])
        if op == "input":
            values["input"] = input_codes(images, T)
            continue
        if op not in OPS:
            nd.fail(f"unknown op {op!r} (version {VERSION} knows input, {', '.join(OPS)})")
        arity, step = OPS[op]
        if not inputs or (arity is not None and len(inputs) != arity):
            nd.fail(f"needs {arity or 'one or more'} input(s), got {inputs!r}")
        xs = [values[i] for i in inputs]
        if op in TIME_MAJOR_INPUT and xs[0].shape[0] != T * len(images):
            nd.fail(f"its input has {xs[0].shape[0]} rows, expected T*B = {T * len(images)} (time-major)")
        values[node["id"]] = step(nd, xs, T)
        for i in set(inputs):
            if last_use[i] == k and i not in kept:
                del values[i]  # an accumulator nobody reads again
    result = Result({n["id"]: values[n["id"]] for n in nodes if n["op"] == "neuron"}, {}, {})
    for out in outputs:
        out = out if isinstance(out, dict) else {}
        name, source, divisor = out.get("name"), out.get("id"), out.get("divisor")
        nd = _Node({"id": source, "op": f"output {name!r}"}, tensors)
        if not isinstance(name, str) or name in result.outputs or not isinstance(source, str) or source not in values:
            nd.fail("an output needs a unique name and the id of a node of the graph")
        scale = nd.tensor("scale", ("float64",), (values[source].shape[1],), tname=out.get("scale"))
        if type(divisor) is not int or divisor < 1:
            nd.fail(f"divisor must be an integer >= 1, got {divisor!r}")
        result.outputs[name] = values[source]
        result.values[name] = values[source].astype(np.float64) * scale[None, :, None, None] / divisor
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m spikedet.integer_reference MODEL.safetensors IMAGES.npy``: each output's shape and sum."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m spikedet.integer_reference MODEL.safetensors IMAGES.npy", file=sys.stderr)
        return 2
    try:
        graph, tensors = load(argv[0])
        result = run(graph, tensors, np.load(argv[1], allow_pickle=False))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, acc in result.outputs.items():
        print(f"{name}: shape {list(acc.shape)} sum {int(acc.sum())} value sum {result.values[name].sum():.6f}")
    print(f"neurons: {len(result.codes)}, code sum {sum(int(q.sum()) for q in result.codes.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
