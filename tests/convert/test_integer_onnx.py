"""The integer graph as ONNX: every op on ONNX Runtime equals an independent int64 computation of the spec.

The graphs are built here by hand (numpy tensors and a graph dict, docs/integer-format.md version 1); the
reference below evaluates them straight from the spec's formulas (int64 numpy, Python floor division, torch
float64 convolutions: exact for these integers), so it shares nothing with the exporter. Every graph is checked
exported both ways: ``convs="auto"`` (float32 convs and float64 requantization where proven exact) and
``convs="integer"`` (integer ops only).
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from spikedet.convert.integer_onnx import METADATA_KEY, export_integer_onnx
from spikedet.errors import SpikedetError

# ---- a reference evaluator, from the spec -------------------------------------------------------------------


def reference(graph, tensors, images):
    """Every node's output (int64) for float32 images in [0, 1]."""
    T = graph["T"]
    q = np.round(images.astype(np.float32) * np.float32(255)).astype(np.int64)
    values = {"input": np.concatenate([q] * T)}
    for node in [n for n in graph["nodes"] if n["op"] != "input"]:
        xs = [values[i] for i in node["inputs"]]
        values[node["id"]] = OPS[node["op"]](node, tensors, T, *xs)
    return values


def ref_conv(node, tensors, T, x):
    zero = tensors[node["input_zero"]] if node.get("input_zero") else np.zeros(x.shape[1], np.int64)
    xz = torch.from_numpy((x - zero[None, :, None, None]).astype(np.float64))
    w = torch.from_numpy(tensors[node["weight"]].astype(np.float64))
    y = F.conv2d(xz, w, stride=node["stride"], padding=node["padding"], groups=node["groups"]).numpy()
    assert np.abs(y).max() < 2**52  # float64 sums of integers are exact below this
    return y.astype(np.int64) + tensors[node["bias"]][None, :, None, None]


def ref_neuron(node, tensors, T, x):
    m = tensors[node["multiplier"]][None, :, None, None]
    S = node["shift"]
    J = (x * m + 2 ** (S - 1)) // 2**S
    if node["kind"] == "lut":
        lut = tensors[node["lut"]].astype(np.int64)
        return lut[np.clip(J - node["lut_min"], 0, len(lut) - 1)]
    Fb, L = node["fraction_bits"], node["levels"]
    R = 2 ** (Fb - 1) if node["rounding"] == "nearest" else 0
    a, s = node["leak"]["multiplier"], node["leak"]["shift"]
    J = J.reshape(T, -1, *x.shape[1:])
    U = J[0]
    q = [np.clip((U + R) // 2**Fb, 0, L)]
    for t in range(1, T):
        U = (U - q[-1] * 2**Fb) * a // 2**s + J[t]
        q.append(np.clip((U + R) // 2**Fb, 0, L))
    return np.concatenate(q)


def ref_maxpool(node, tensors, T, x):
    k, s, p = node["kernel"], node["stride"], node["padding"]
    return F.max_pool2d(torch.from_numpy(x.astype(np.float64)), k, s, p).numpy().astype(np.int64)


OPS = {
    "conv": ref_conv,
    "neuron": ref_neuron,
    "maxpool": ref_maxpool,
    "add": lambda node, tensors, T, *xs: sum(xs),
    "concat": lambda node, tensors, T, *xs: np.concatenate(xs, axis=1),
    "upsample": lambda node, tensors, T, x: x.repeat(node["scale"], 2).repeat(node["scale"], 3),
    "time_sum": lambda node, tensors, T, x: x.reshape(T, -1, *x.shape[1:]).sum(0),
}

# ---- building graphs ------------------------------------------------------------------------------------------


class Graph:
    """A graph dict and its tensors, built node by node."""

    def __init__(self, T=1, seed=0):
        self.rng = np.random.default_rng(seed)
        self.T, self.nodes, self.tensors, self.outputs = T, [], {}, []

    def add(self, op, inputs, **fields):
        node = {"id": f"n{len(self.nodes)}", "op": op, "inputs": inputs, **fields}
        self.nodes.append(node)
        return node["id"]

    def tensor(self, name, array):
        self.tensors[name] = array
        return name

    def conv(self, src, cin, cout, k=3, stride=1, padding=1, groups=1, wmax=127, dtype=np.int8, zero=None,
             bias=1000):
        nid = f"n{len(self.nodes)}"
        w = self.rng.integers(-wmax, wmax + 1, (cout, cin // groups, k, k)).astype(dtype)
        fields = {"weight": self.tensor(f"{nid}.w", w),
                  "bias": self.tensor(f"{nid}.b", self.rng.integers(-bias, bias + 1, cout).astype(np.int64)),
                  "input_zero": None if zero is None else self.tensor(f"{nid}.z", np.asarray(zero, np.int64)),
                  "stride": [stride, stride], "padding": [padding, padding], "groups": groups,
                  "scale": self.tensor(f"{nid}.s", np.full(cout, 1e-3)), "bound": 0, "accumulator_bits": 32,
                  "module": "test"}
        return self.add("conv", [src], **fields)

    def threshold(self, src, channels, levels, multiplier, shift=12, F=4, rounding="nearest", leak=(1, 2)):
        nid = f"n{len(self.nodes)}"
        m = self.tensor(f"{nid}.m", np.asarray(multiplier, np.int64) * np.ones(channels, np.int64))
        return self.add("neuron", [src], module="test", T=self.T, multiplier=m, shift=shift, levels=levels,
                        n=1, zero=0, encoding="binary", rest=None, kind="threshold", fraction_bits=F,
                        rounding=rounding, leak={"multiplier": leak[0], "shift": leak[1]})

    def output(self, nid, name):
        self.outputs.append({"id": nid, "name": name, "scale": None, "divisor": self.T})

    def dict(self):
        return {"format": "spikedet-integer-graph", "version": 1, "T": self.T,
                "input": {"id": "input", "channels": 3, "levels": 255}, "nodes": self.nodes,
                "outputs": self.outputs, "head": {"type": "test"}}


def images(batch, h, w, seed=1):
    return (np.random.default_rng(seed).integers(0, 256, (batch, 3, h, w)) / np.float32(255)).astype(np.float32)


def check(g, tmp_path, *shapes, modes=("auto", "integer"), x=None):
    """Export with codes (each conv mode), run ONNX Runtime at each (B, H, W) (or on ``x``), compare every output
    with the reference; the model of the first mode stays at ``tmp_path / "m.onnx"``."""
    for mode in reversed(modes):
        path = export_integer_onnx(g.dict(), g.tensors, tmp_path / "m.onnx", codes=True, convs=mode)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        for i, shape in enumerate([None] if x is not None else shapes or [(2, 20, 24)]):
            feed = images(*shape, seed=i) if x is None else x
            got = dict(zip(names, session.run(None, {"images": feed})))
            want = reference(g.dict(), g.tensors, feed)
            for out in g.outputs:
                assert got[out["name"]].dtype in (np.int32, np.int64)
                np.testing.assert_array_equal(got[out["name"]], want[out["id"]], err_msg=f"{mode}: {out['name']}")
            for node in g.nodes:
                if node["op"] == "neuron":
                    np.testing.assert_array_equal(got[f"codes:{node['id']}"], want[node["id"]],
                                                  err_msg=f"{mode}: {node['id']}")
    return want, got


def choices(path):
    """The metadata's record of how each conv and neuron was emitted."""
    model = onnx.load(str(path))
    return json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])["convs"]


def spread_multiplier(g, src, x, levels, F=4, shift=12):
    """A multiplier that maps the accumulators of ``src`` onto codes below 0, across 0..levels and above."""
    acc = reference(g.dict(), g.tensors, x)[src]
    span = max(abs(int(acc.min())), abs(int(acc.max())), 1)
    return max(1, int(3 * (levels + 1) * 2 ** (F + shift) / span))


# ---- tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [40, 100, 200, 511, 5000])
@pytest.mark.parametrize("zero", ["none", "uniform", "per-channel"])
def test_conv_on_codes_of_any_width_with_zero_offsets_and_padding_is_exact(tmp_path, levels, zero):
    """Codes within the int8 window, one window wide, bytes, 9 bits and 13 bits; zero offsets none, uniform
    and per channel, on a padded stride-1 and a stride-2 conv."""
    g = Graph(seed=levels)
    c1 = g.conv("input", 3, 6, wmax=20)
    g.nodes[-1]["bias"] = g.tensor("b0", np.zeros(6, np.int64))
    m = spread_multiplier(g, c1, images(2, 20, 24), levels)
    n1 = g.threshold(c1, 6, levels, g.rng.integers(m // 2, m + 1, 6))
    z = {"none": None, "uniform": np.full(6, levels // 3), "per-channel": g.rng.integers(0, levels + 1, 6)}[zero]
    c2 = g.conv(n1, 6, 5, zero=z)
    c3 = g.conv(n1, 6, 4, k=3, stride=2, padding=1, zero=z)
    g.output(c2, "p3")
    g.output(c3, "p4")
    codes = check(g, tmp_path)[0][n1]
    assert codes.min() == 0 and codes.max() == levels and len(np.unique(codes)) > min(levels, 200) // 4


@pytest.mark.parametrize("levels", [40, 200, 511])
def test_wide_convs_with_zero_points_are_exact(tmp_path, levels):
    """256 input channels (K = 2304: ONNX Runtime's kernels work through K in blocks and sum rows and columns
    for the zero points), full-range int8 weights, a zero offset."""
    g = Graph(seed=15)
    c1 = g.conv("input", 3, 256, wmax=20)
    n1 = g.threshold(c1, 256, levels, spread_multiplier(g, c1, images(1, 8, 8), levels))
    g.tensors[f"{g.conv(n1, 256, 8, zero=np.full(256, levels // 2))}.w"][:, :, 1, 1] = -128
    g.output(g.nodes[-1]["id"], "p3")
    check(g, tmp_path, (1, 8, 8), (2, 9, 7))


def test_int16_weights_split_into_bytes_are_exact(tmp_path):
    g = Graph(seed=3)
    c1 = g.conv("input", 3, 4, wmax=30000, dtype=np.int16)
    n1 = g.threshold(c1, 4, 300, spread_multiplier(g, c1, images(2, 20, 24), 300))
    c2 = g.conv(n1, 4, 3, wmax=20000, dtype=np.int16, zero=np.full(4, 7))
    g.output(c1, "raw")
    g.output(c2, "p3")
    check(g, tmp_path)


def test_accumulators_beyond_int32_come_out_as_exact_int64(tmp_path):
    g = Graph(seed=4)
    c1 = g.conv("input", 3, 8, wmax=20)
    n1 = g.threshold(c1, 8, 9000, spread_multiplier(g, c1, images(2, 20, 24), 9000))
    c2 = g.conv(n1, 8, 2, wmax=32000, dtype=np.int16)
    g.tensors[f"{c2}.w"] = np.abs(g.tensors[f"{c2}.w"])  # all of one sign: the sums grow
    g.output(c2, "p3")
    n2 = g.threshold(c2, 2, 255, 1, shift=28)  # a neuron on int64 accumulators
    g.output(g.conv(n2, 2, 2), "p4")
    want, got = check(g, tmp_path)
    assert np.abs(want[c2]).max() >= 2**31 and got["p3"].dtype == np.int64
    assert 0 < want[n2].max() < 255


@pytest.mark.parametrize(("shift", "F", "weights"), [(22, 4, np.int8), (3, 1, np.int16)])
def test_neuron_whose_products_exceed_int32_clips_its_input_first(tmp_path, shift, F, weights):
    """Multiplier below the divisor (the clip alone decides) and above it (a Clip after the products), both
    in int32 arithmetic although the products of the accumulators' whole range need int64."""
    g = Graph(seed=5)
    c1 = g.conv("input", 3, 4, wmax=100 if weights == np.int8 else 30000, dtype=weights)
    spread = spread_multiplier(g, c1, images(2, 20, 24), 15, F=F, shift=shift)
    m = 3 * 2 ** (shift + F) + 5 if weights == np.int16 else spread  # 5: the interval's ends are not multiples
    n1 = g.threshold(c1, 4, 15, m, shift=shift, F=F)
    g.output(g.conv(n1, 4, 2), "p3")
    codes = check(g, tmp_path, modes=("integer", "auto"))[0][n1]
    assert codes.min() == 0 and codes.max() == 15 and (m > 2 ** (shift + F)) == (weights == np.int16)
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert {"Max", "Min"} <= {n.op_type for n in model.graph.node}
    assert all(i.data_type != onnx.TensorProto.INT64 for i in model.graph.initializer if i.dims == [])


def test_lut_neuron_whose_products_exceed_int32_clips_its_input_first(tmp_path):
    g = Graph(seed=16)
    c1 = g.conv("input", 3, 4, wmax=30000, dtype=np.int16)
    lut = g.tensor("lut", np.array([0, 9, 1, 8, 2, 7, 3, 6, 4, 5], np.int16))
    m = g.tensor("m", np.array([53, 29, 7, 101], np.int64))  # above and below the divisor 2**3
    n1 = g.add("neuron", [c1], module="a2s", T=1, multiplier=m, shift=3, levels=9, n=1, zero=0,
               encoding="binary", rest=None, kind="lut", lut=lut, lut_min=5, grid=1)
    g.output(g.conv(n1, 4, 2), "p3")
    codes = check(g, tmp_path, modes=("integer", "auto"))[0][n1]
    assert set(np.unique(codes)) >= {0, 5}
    assert {"Max", "Min"} <= {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}


def test_neuron_whose_clipped_products_still_exceed_int32_computes_in_int64(tmp_path):
    g = Graph(seed=14)
    c1 = g.conv("input", 3, 4, wmax=100)
    n1 = g.threshold(c1, 4, 15, spread_multiplier(g, c1, images(2, 20, 24), 15, shift=24), shift=24)  # 16 * 2**28
    g.output(g.conv(n1, 4, 2), "p3")
    assert check(g, tmp_path, modes=("integer", "auto"))[0][n1].max() == 15
    assert any(n.op_type == "Cast" and n.attribute[0].i == onnx.TensorProto.INT64
               for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)


def test_neuron_with_negative_and_zero_multipliers_is_exact(tmp_path):
    g = Graph(seed=13)
    c1 = g.conv("input", 3, 4, wmax=50)
    m = spread_multiplier(g, c1, images(2, 20, 24), 31)
    n1 = g.threshold(c1, 4, 31, [m, -m, 0, m // 3])
    g.output(g.conv(n1, 4, 2), "p3")
    assert check(g, tmp_path)[0][n1].max() == 31


def test_depthwise_conv_with_stride_two_is_exact(tmp_path):
    g = Graph(seed=6)
    c1 = g.conv("input", 3, 8, wmax=20)
    n1 = g.threshold(c1, 8, 511, spread_multiplier(g, c1, images(2, 20, 24), 511))
    g.output(g.conv(n1, 8, 8, k=5, stride=2, padding=2, groups=8, zero=np.full(8, 3)), "dw")
    g.output(g.conv(n1, 8, 4, k=3, groups=2), "grouped")
    check(g, tmp_path)


@pytest.mark.parametrize("rounding", ["nearest", "floor"])
def test_threshold_neuron_over_two_timesteps_with_leak_one_quarter(tmp_path, rounding):
    g = Graph(T=2, seed=7)
    c1 = g.conv("input", 3, 4, wmax=50)
    n1 = g.threshold(c1, 4, 20, spread_multiplier(g, c1, images(2, 20, 24), 20), rounding=rounding, leak=(1, 2))
    c2 = g.conv(n1, 4, 3)
    n2 = g.threshold(c2, 3, 511, spread_multiplier(g, c2, images(2, 20, 24), 511), leak=(1, 2))
    g.output(g.add("time_sum", [g.conv(n2, 3, 2)]), "p3")
    want, _ = check(g, tmp_path)
    t0, t1 = want[n1].reshape(2, -1)
    assert (t0 != t1).any()  # the membrane carries over: the two timesteps differ


def test_lut_neuron_clips_its_index_at_both_ends(tmp_path):
    g = Graph(seed=8)
    c1 = g.conv("input", 3, 5, wmax=60)
    m = spread_multiplier(g, c1, images(2, 20, 24), 64, F=0, shift=10)
    lut = g.tensor("lut", np.concatenate([np.arange(0, 64), np.full(6, 63)]).astype(np.int16)[::-1].copy())
    n1 = g.add("neuron", [c1], module="a2s", T=1, multiplier=g.tensor("m", np.full(5, m, np.int64)), shift=10,
               levels=63, n=10, zero=3, encoding="binary", rest=None, kind="lut", lut=lut, lut_min=-20, grid=10)
    g.output(g.conv(n1, 5, 3, zero=np.full(5, 3)), "p3")
    want = reference(g.dict(), g.tensors, images(2, 20, 24))
    acc = want[c1] * np.full(5, m)[None, :, None, None]
    J = (acc + 2**9) // 2**10
    assert (J - (-20) < 0).any() and (J - (-20) > 69).any()  # both clips are exercised
    check(g, tmp_path)


def test_maxpool_upsample_concat_add_and_time_sum_are_exact(tmp_path):
    g = Graph(T=2, seed=9)
    c1 = g.conv("input", 3, 4, wmax=40)
    small = g.threshold(c1, 4, 15, spread_multiplier(g, c1, images(2, 20, 24), 15))
    wide = g.threshold(c1, 4, 700, spread_multiplier(g, c1, images(2, 20, 24), 700))
    p_small = g.add("maxpool", [small], kernel=5, stride=1, padding=2)
    p_wide = g.add("maxpool", [wide], kernel=3, stride=2, padding=1)
    up = g.add("upsample", [p_wide], scale=2)
    cat = g.add("concat", [p_small, up, small])
    codes_sum = g.add("add", [p_small, small])
    c2 = g.conv(cat, 12, 3)
    acc_sum = g.add("add", [c2, g.conv(codes_sum, 4, 3)])
    g.output(g.add("time_sum", [acc_sum]), "p3")
    g.output(g.add("time_sum", [cat]), "codes_sum")
    check(g, tmp_path)


def test_codes_one_window_wide_above_int8_are_shifted_exactly(tmp_path):
    """Codes in [100, 200] (a sum of codes and a constant LUT): fed as int8 after a shift that wraps around."""
    g = Graph(seed=17)
    c1 = g.conv("input", 3, 4, wmax=30)
    n1 = g.threshold(c1, 4, 100, spread_multiplier(g, c1, images(2, 20, 24), 100))
    lut = g.tensor("lut", np.full(3, 100, np.int16))
    n2 = g.add("neuron", [c1], module="const", T=1, multiplier=g.tensor("m", np.ones(4, np.int64)), shift=1,
               levels=100, n=1, zero=0, encoding="binary", rest=None, kind="lut", lut=lut, lut_min=0, grid=1)
    total = g.add("add", [n1, n2])
    g.output(g.conv(total, 4, 3, zero=np.full(4, 150)), "p3")
    codes = check(g, tmp_path)[0][total]
    assert codes.min() == 100 and codes.max() == 200


def test_batch_and_image_size_are_dynamic(tmp_path):
    g = Graph(seed=10)
    c1 = g.conv("input", 3, 4, k=3, stride=2, wmax=30)
    n1 = g.threshold(c1, 4, 255, spread_multiplier(g, c1, images(2, 20, 24), 255))
    g.output(g.conv(g.add("upsample", [n1], scale=2), 4, 2), "p3")
    g.nodes.insert(0, {"id": "input", "op": "input"})  # the spec's input op may be listed among the nodes
    check(g, tmp_path, (1, 16, 16), (3, 20, 28), (2, 33, 17))


def test_metadata_describes_outputs_and_codes(tmp_path):
    g = Graph(seed=11)
    n1 = g.threshold(g.conv("input", 3, 2), 2, 9, 1)
    g.output(g.conv(n1, 2, 2), "p3")
    g.outputs[0]["scale"] = g.tensor("p3.scale", np.array([0.25, 1e-7]))
    path = export_integer_onnx(g.dict(), g.tensors, tmp_path / "m.onnx", codes=True)
    model = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    assert (meta["format"], meta["version"], meta["T"]) == ("spikedet-integer-graph", 1, 1)
    assert [o["name"] for o in meta["outputs"]] == ["p3", f"codes:{n1}"]
    assert [o.name for o in model.graph.output] == ["p3", f"codes:{n1}"]
    assert meta["outputs"][0]["id"] == g.outputs[0]["id"] and meta["head"] == {"type": "test"}
    assert meta["outputs"][0]["scale"] == [0.25, 1e-7] and meta["outputs"][0]["dtype"] == "int32"
    assert meta["outputs"][1] == {"name": f"codes:{n1}", "dtype": "int16", "codes": n1}
    plain = export_integer_onnx(g.dict(), g.tensors, tmp_path / "p.onnx")
    assert [o.name for o in onnx.load(str(plain)).graph.output] == ["p3"]
    c1, c2 = g.nodes[0]["id"], g.nodes[2]["id"]  # image codes 0..255: float32; codes 0..9: one int8 tensor
    assert meta["convs"] == {"mode": "auto", "nodes": {c1: "float32", n1: "float64", c2: "integer"}}
    int8 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    assert any(n.op_type == "GatherElements" and n.input[0] in int8 for n in model.graph.node)  # looked up as int8
    integer = export_integer_onnx(g.dict(), g.tensors, tmp_path / "i.onnx", convs="integer")
    assert choices(integer) == {"mode": "integer", "nodes": {c1: "integer", n1: "integer", c2: "integer"}}
    assert "Conv" not in {n.op_type for n in onnx.load(str(integer)).graph.node}


def test_graphs_it_cannot_run_are_refused_in_one_line(tmp_path):
    g = Graph(seed=12)
    g.output(g.conv("input", 3, 2), "p3")
    with pytest.raises(SpikedetError, match="version"):
        export_integer_onnx({**g.dict(), "version": 2}, g.tensors, tmp_path / "m.onnx")
    bad = g.dict()
    bad["nodes"] = [*bad["nodes"], {"id": "x", "op": "softmax", "inputs": ["n0"]}]
    with pytest.raises(SpikedetError, match="unknown op 'softmax'"):
        export_integer_onnx(bad, g.tensors, tmp_path / "m.onnx")
    tensors = {**g.tensors, "n0.w": g.tensors["n0.w"].astype(np.int32)}
    with pytest.raises(SpikedetError, match="weight is int32"):
        export_integer_onnx(g.dict(), tensors, tmp_path / "m.onnx")
    with pytest.raises(SpikedetError, match="convs='float'"):
        export_integer_onnx(g.dict(), g.tensors, tmp_path / "m.onnx", convs="float")


# ---- float32 convs and float64 requantization: exact up to the proven bounds ---------------------------------


def image_conv(g, total, cout=3, k=13, bias=0):
    """A first conv whose output channels each have ``sum |W| = total`` (int16 weights; channel 0 all positive,
    so a white image takes it to ``total * 255 + bias``, the others of both signs); bound ``total * 255 + |bias|``."""
    w = np.full((cout, 3 * k * k), total // (3 * k * k), np.int64)
    w[:, : total % (3 * k * k)] += 1
    w[1:] *= g.rng.choice([-1, 1], w[1:].shape)
    nid = g.conv("input", 3, cout, k=k, padding=k // 2, dtype=np.int16)
    g.tensors[f"{nid}.w"] = w.reshape(cout, 3, k, k).astype(np.int16)
    g.tensors[f"{nid}.b"] = np.full(cout, bias, np.int64)
    return nid


def white(h=20, w=24):
    return np.ones((1, 3, h, w), np.float32)


def test_float_conv_is_exact_with_a_bound_of_2_24_minus_1(tmp_path):
    """2**24 - 1 = 65793 * 255: a white image reaches it (odd, the largest integer below 2**24), the
    channels of both signs cancel in every summation order; their codes requantize exactly in float64."""
    g = Graph(seed=18)
    c1 = image_conv(g, 65793)
    n1 = g.threshold(c1, 3, 255, 80000, shift=28)
    g.output(c1, "p3")
    g.output(g.conv(n1, 3, 2), "p4")
    want, _ = check(g, tmp_path, x=white())
    assert want[c1].max() == 2**24 - 1 and want[n1].max() == 255
    check(g, tmp_path, (2, 20, 24), (1, 17, 13))
    assert choices(tmp_path / "m.onnx")["nodes"][c1] == "float32"


def test_conv_whose_bound_reaches_2_24_runs_as_conv_integer_and_stays_exact(tmp_path):
    g = Graph(seed=19)
    c1 = image_conv(g, 65794, bias=1)  # bound 2**24 + 256
    g.output(c1, "p3")
    want, _ = check(g, tmp_path, x=white())
    top = int(want[c1].max())
    assert top == 2**24 + 255 and int(np.float32(top)) != top  # float32 would have rounded it
    assert choices(tmp_path / "m.onnx")["nodes"][c1] == "integer"
    assert "ConvInteger" in {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}


def test_wide_3x3_conv_on_codes_near_2_24_is_exact(tmp_path):
    """64 channels, 3x3, stride 1, padding 1, output above 25x25: the shape a Winograd kernel would take (whose
    transforms are not exact at these sums); sum |W| * 255 = 2**24 - 1 and most codes at 255."""
    g = Graph(seed=20)
    c1 = g.conv("input", 3, 64, wmax=20, bias=0)
    g.tensors[f"{c1}.b"] = np.full(64, 20000, np.int64)  # mostly positive: most codes saturate at 255
    n1 = g.threshold(c1, 64, 255, spread_multiplier(g, c1, images(1, 32, 32), 255))
    c2 = g.conv(n1, 64, 4, bias=0)
    w = np.full((4, 576), 65793 // 576, np.int64)
    w[:, : 65793 % 576] += 1
    w[1:] *= g.rng.choice([-1, 1], w[1:].shape)
    g.tensors[f"{c2}.w"] = w.reshape(4, 64, 3, 3).astype(np.int8)
    g.output(c2, "p3")
    want, _ = check(g, tmp_path, (1, 32, 32), (1, 40, 36))
    assert want[c2].max() > 2**23
    assert choices(tmp_path / "m.onnx")["nodes"][c2] == "float32"


def test_float64_requantization_clips_per_channel_or_falls_back_to_integers(tmp_path):
    """Multipliers 4096x apart: one clip for all channels would need a table too big, so each channel is clipped
    (Max, Min); a multiplier of 2**46 makes products beyond 2**53, so that neuron computes in integers."""
    g = Graph(seed=21)
    c1 = g.conv("input", 3, 4, wmax=60)
    m = spread_multiplier(g, c1, images(2, 20, 24), 255)
    n1 = g.threshold(c1, 4, 255, [m, m, m * 4096, m * 4096], shift=24)
    n2 = g.threshold(c1, 4, 15, 2**46 + 12345, shift=50)
    g.output(g.conv(n1, 4, 2), "p3")
    g.output(g.conv(n2, 4, 2), "p4")
    want, _ = check(g, tmp_path)
    assert want[n1].max() == 255 and want[n2].max() == 15
    assert choices(tmp_path / "m.onnx")["nodes"][n1] == "float64"
    assert choices(tmp_path / "m.onnx")["nodes"][n2] == "integer"
    assert {"Max", "Min"} <= {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}


@pytest.mark.parametrize("which", ["a2s", "spikeyolo"])
def test_an_integer_export_starts_with_output0_that_yolo_reads(which, tmp_path):
    """``spikedet export`` of an integer model: ``output0`` (the head decode, first, what ``YOLO("x.onnx")``
    reads) close to PyTorch's, then the integer outputs the check reads, and Ultralytics' metadata."""
    from ultralytics import YOLO
    from ultralytics.nn.backends.base import BaseBackend

    from spikedet.convert.pipelines import export_weights
    from spikedet.io.images import default_image, letterbox_tensor, read_image
    from spikedet.io.weights import save_model
    from tests.measure.test_integer_session import integer_a2s, integer_spikeyolo

    model, _ = integer_a2s() if which == "a2s" else integer_spikeyolo()
    weights = save_model(model, tmp_path / "int.safetensors")
    size = 160 if which == "a2s" else 64
    result = export_weights(weights, tmp_path / "int.onnx", imgsz=size)
    assert result.check.passed
    session = ort.InferenceSession(str(result.output), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    heads = [o["name"] for o in json.loads(BaseBackend.read_metadata(result.output)[METADATA_KEY])["outputs"]
             if "codes" not in o]
    assert names[0] == "output0" and names[1:1 + len(heads)] == heads and names[-1].startswith("codes:")
    image = letterbox_tensor(read_image(default_image()), size)[None]
    with torch.no_grad():
        expected = model(image)[0].numpy()
    got = session.run(["output0"], {"images": image.numpy()})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)  # the float decode, in another runtime
    meta = BaseBackend.read_metadata(result.output)
    assert meta["task"] == "detect" and meta["imgsz"] == f"[{size}, {size}]"
    found = YOLO(str(result.output), task="detect").predict(read_image(default_image()), imgsz=size, conf=0.25,
                                                           verbose=False)[0]
    assert found.names == dict(model.names)
    if which == "a2s":  # a trained model: the bus and its passengers
        assert {"bus", "person"} <= {found.names[int(c)] for c in found.boxes.cls}
