"""The integer reference interpreter computes each op of the integer graph (version 1) exactly as specified.

Graphs here are built by hand and written to real safetensors files; every op is checked against an independent
computation (torch in float64, where every value is an integer far below 2**53, or plain Python integers).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

from spikedet import integer_reference as ir

ROOT = Path(__file__).resolve().parents[1]


def header(nodes: list[dict], outputs: list[dict], T: int = 1) -> dict:
    return {
        "format": "spikedet-integer-graph",
        "version": 1,
        "T": T,
        "input": {"id": "input", "channels": 3, "levels": 255},
        "nodes": [{"id": "input", "op": "input"}, *nodes],
        "outputs": outputs,
        "head": {},
    }


def conv_node(node_id: str, source: str, weight, tensors: dict, *, stride=1, padding=0, groups=1, bias=None, zero=None):
    """A conv node over ``source``, its tensors added to ``tensors`` (bias 0, scale 1 and a loose bound unless given)."""
    cout = weight.shape[0]
    tensors[f"{node_id}.weight"] = weight
    tensors[f"{node_id}.bias"] = np.zeros(cout, np.int64) if bias is None else bias
    tensors[f"{node_id}.scale"] = np.ones(cout, np.float64)
    if zero is not None:
        tensors[f"{node_id}.zero"] = zero
    return {
        "id": node_id, "op": "conv", "inputs": [source], "module": "test",
        "weight": f"{node_id}.weight", "bias": f"{node_id}.bias", "scale": f"{node_id}.scale",
        "input_zero": None if zero is None else f"{node_id}.zero",
        "stride": [stride, stride], "padding": [padding, padding], "groups": groups,
        "bound": 2**40, "accumulator_bits": 64,
    }  # fmt: skip


def output(node_id: str, channels: int, tensors: dict, divisor: int = 1, scale=None) -> dict:
    tensors[f"{node_id}.out_scale"] = np.ones(channels) if scale is None else scale
    return {"id": node_id, "name": node_id, "scale": f"{node_id}.out_scale", "divisor": divisor}


def save(tmp_path: Path, graph: dict, tensors: dict) -> Path:
    path = tmp_path / "model.safetensors"
    config = {"format": "spikedet-model", "version": 2, "state": "integer", "graph": graph}
    save_file(tensors, str(path), metadata={"spikedet": json.dumps(config)})
    return path


def run_file(tmp_path: Path, graph: dict, tensors: dict, images: np.ndarray) -> ir.Result:
    return ir.run(*ir.load(save(tmp_path, graph, tensors)), images)


def random_images(shape=(2, 3, 9, 11), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def torch_conv(x: np.ndarray, weight, bias, zero, stride, padding, groups) -> np.ndarray:
    """Zero offset removed first, zero padding after it; float64 holds these integers exactly."""
    xz = torch.from_numpy(x).double() - (0 if zero is None else torch.from_numpy(zero).double().view(1, -1, 1, 1))
    w, b = torch.from_numpy(weight.astype(np.int64)).double(), torch.from_numpy(bias).double()
    out = F.conv2d(xz, w, b, stride=stride, padding=padding, groups=groups)
    return out.numpy().astype(np.int64)


# -- reading the file ----------------------------------------------------------------------------------------------


def test_load_returns_the_graph_from_the_spikedet_metadata_and_every_tensor(tmp_path):
    tensors = {}
    graph = header([conv_node("c", "input", np.ones((2, 3, 1, 1), np.int8), tensors)], [output("c", 2, tensors)])
    loaded_graph, loaded = ir.load(save(tmp_path, graph, tensors))
    assert loaded_graph == graph
    assert sorted(loaded) == sorted(tensors)
    assert all(loaded[k].dtype == tensors[k].dtype and np.array_equal(loaded[k], tensors[k]) for k in tensors)


def test_load_rejects_files_without_spikedet_metadata_or_without_a_graph(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(1, np.int8)}, str(plain))
    with pytest.raises(ValueError, match="no 'spikedet' metadata"):
        ir.load(plain)
    float_model = tmp_path / "float.safetensors"
    save_file({"w": np.zeros(1, np.int8)}, str(float_model), metadata={"spikedet": json.dumps({"state": "float"})})
    with pytest.raises(ValueError, match="no integer 'graph'"):
        ir.load(float_model)


# -- input ---------------------------------------------------------------------------------------------------------


def test_float_images_become_round_x_times_255_and_uint8_images_are_used_as_codes():
    codes = random_images()
    floats = codes.astype(np.float32) / np.float32(255)
    assert np.array_equal(ir.input_codes(floats, 1), codes.astype(np.int64))
    assert np.array_equal(ir.input_codes(codes, 1), codes.astype(np.int64))
    assert ir.input_codes(codes, 1).dtype == np.int64


def test_input_is_repeated_time_major_row_t_times_b_plus_b_is_image_b():
    codes = random_images((2, 3, 4, 4))
    q = ir.input_codes(codes, 3)
    assert q.shape == (6, 3, 4, 4)
    for t in range(3):
        for b in range(2):
            assert np.array_equal(q[t * 2 + b], codes[b])


@pytest.mark.parametrize("images", [np.full((1, 3, 2, 2), 1.5, np.float32), np.zeros((1, 3, 2, 2), np.float64)])
def test_images_outside_0_1_or_of_another_dtype_are_refused(images):
    with pytest.raises(ValueError, match="images must|must lie in"):
        ir.input_codes(images, 1)


# -- conv ----------------------------------------------------------------------------------------------------------

CONV_CASES = {  # cin, cout, kernel, stride, padding, groups
    "3x3 stride 1 pad 1": (4, 5, 3, 1, 1, 1),
    "6x6 stride 2 pad 2 (YOLOv5 stem)": (3, 4, 6, 2, 2, 1),
    "1x1": (6, 3, 1, 1, 0, 1),
    "2 groups": (4, 6, 3, 2, 1, 2),
    "depthwise (groups == cin == cout)": (6, 6, 3, 1, 1, 6),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_equals_the_float64_pytorch_conv_of_inputs_minus_their_zero_padded_after(case):
    cin, cout, k, stride, padding, groups = case
    rng = np.random.default_rng(sum(case))
    x = rng.integers(0, 512, (2, cin, 9, 10))
    weight = rng.integers(-32768, 32768, (cout, cin // groups, k, k)).astype(np.int16)
    bias = rng.integers(-(10**9), 10**9, cout)
    zero = rng.integers(0, 512, cin)
    got = ir.conv(x, weight, bias, zero, (stride, stride), (padding, padding), groups)
    assert got.dtype == np.int64
    assert np.array_equal(got, torch_conv(x, weight, bias, zero, stride, padding, groups))


def test_conv_pads_with_zero_after_removing_the_input_zero_not_with_the_zero_code():
    x = np.full((1, 1, 3, 3), 7, np.int64)
    weight = np.ones((1, 1, 3, 3), np.int8)
    got = ir.conv(x, weight, np.zeros(1, np.int64), np.array([7]), (1, 1), (1, 1), 1)
    assert np.array_equal(got, np.zeros((1, 1, 3, 3)))  # inside: 7 - 7 = 0; outside: 0, not -7
    shifted = ir.conv(x, weight, np.zeros(1, np.int64), np.array([3]), (1, 1), (1, 1), 1)
    assert shifted[0, 0, 0, 0] == 4 * 4 and shifted[0, 0, 1, 1] == 9 * 4  # a corner sees 4 pixels, the middle 9


def test_conv_node_in_a_graph_reads_its_tensors_and_groups(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {}
    weight = rng.integers(-128, 128, (6, 1, 3, 3)).astype(np.int8)
    zero = np.array([128, 0, 255])
    nodes = [conv_node("c", "input", weight, tensors, stride=2, padding=1, groups=3, zero=zero)]
    images = random_images()
    result = run_file(tmp_path, header(nodes, [output("c", 6, tensors)]), tensors, images)
    expected = torch_conv(images.astype(np.int64), weight, tensors["c.bias"], zero, 2, 1, 3)
    assert np.array_equal(result.outputs["c"], expected)


def test_conv_accumulators_beyond_the_proven_bound_are_reported_as_a_wrong_file(tmp_path):
    tensors = {}
    node = conv_node("c", "input", np.ones((1, 3, 1, 1), np.int8), tensors) | {"bound": 764, "accumulator_bits": 32}
    graph = header([node], [output("c", 1, tensors)])
    run_file(tmp_path, graph, tensors, np.full((1, 3, 2, 2), 254, np.uint8))  # 3 * 254 = 762 fits
    with pytest.raises(ValueError, match=r"node 'c' \(conv\).*above its proven bound 764"):
        run_file(tmp_path, graph, tensors, np.full((1, 3, 2, 2), 255, np.uint8))  # 765 does not


# -- add, concat, maxpool, upsample, time_sum ----------------------------------------------------------------------


def test_maxpool_equals_pytorch_and_never_selects_padding_even_below_zero():
    x = np.random.default_rng(4).integers(-(10**12), -(10**6), (2, 3, 7, 8))  # all negative: padding 0 would win
    for kernel, stride, padding in [(5, 1, 2), (3, 2, 1), (2, 2, 0)]:
        expected = F.max_pool2d(torch.from_numpy(x).double(), kernel, stride, padding).numpy().astype(np.int64)
        assert np.array_equal(ir.maxpool(x, kernel, stride, padding), expected)


def test_upsample_repeats_each_pixel_s_by_s():
    x = np.random.default_rng(5).integers(-100, 100, (2, 3, 4, 5))
    expected = F.interpolate(torch.from_numpy(x).double(), scale_factor=2, mode="nearest").numpy().astype(np.int64)
    assert np.array_equal(ir.upsample(x, 2), expected)


def test_add_concat_maxpool_upsample_and_time_sum_compose_in_a_graph_with_T_2(tmp_path):
    tensors = {}
    rng = np.random.default_rng(6)
    w1, w2 = (
        rng.integers(-128, 128, (2, 3, 1, 1)).astype(np.int8),
        rng.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8),
    )
    nodes = [
        conv_node("a", "input", w1, tensors),
        conv_node("b", "input", w2, tensors, padding=1),
        {"id": "sum", "op": "add", "inputs": ["a", "b", "a"]},
        {"id": "cat", "op": "concat", "inputs": ["sum", "b"]},
        {"id": "pool", "op": "maxpool", "inputs": ["cat"], "kernel": 3, "stride": 2, "padding": 1},
        {"id": "up", "op": "upsample", "inputs": ["pool"], "scale": 2},
        {"id": "out", "op": "time_sum", "inputs": ["up"]},
    ]
    images = random_images((2, 3, 6, 6))
    scale = np.array([0.5, 1.0, 2.0, 0.25])
    result = run_file(
        tmp_path, header(nodes, [output("out", 4, tensors, divisor=2, scale=scale)], T=2), tensors, images
    )
    x = images.astype(np.int64)
    a, b = (
        torch_conv(x, w1, np.zeros(2, np.int64), None, 1, 0, 1),
        torch_conv(x, w2, np.zeros(2, np.int64), None, 1, 1, 1),
    )
    cat = torch.from_numpy(np.concatenate([a + b + a, b], axis=1)).double()
    one_step = F.interpolate(F.max_pool2d(cat, 3, 2, 1), scale_factor=2).numpy().astype(np.int64)
    assert np.array_equal(result.outputs["out"], 2 * one_step)  # both timesteps see the same image
    assert np.array_equal(result.values["out"], 2 * one_step * scale[None, :, None, None] / 2)


def test_time_sum_adds_the_T_blocks_of_B_rows():
    x = np.arange(3 * 2 * 1 * 2 * 2).reshape(6, 1, 2, 2)  # T=3, B=2
    got = ir.time_sum(x, 3)
    assert np.array_equal(got[0], x[0] + x[2] + x[4]) and np.array_equal(got[1], x[1] + x[3] + x[5])


# -- neurons -------------------------------------------------------------------------------------------------------


def requantize_by_hand(i: int, m: int, shift: int) -> int:
    return (i * m + 2 ** (shift - 1)) // 2**shift  # Python's // is floor division


def threshold_by_hand(J: list[int], F_bits: int, rounding: str, a: int, s: int, L: int) -> list[int]:
    """The spec's recurrence for one element over T = len(J) timesteps, in Python integers."""
    R = 2 ** (F_bits - 1) if rounding == "nearest" else 0
    q: list[int] = []
    u = 0
    for t, j in enumerate(J):
        u = j if t == 0 else (u - q[-1] * 2**F_bits) * a // 2**s + j
        q.append(min(max((u + R) // 2**F_bits, 0), L))
    return q


def test_requantize_rounds_half_up_including_negative_halves():
    acc = np.array([-7, -6, -5, -3, -2, -1, 0, 1, 2, 3, 5, 6, 7, 10**12]).reshape(1, -1, 1, 1)
    multiplier = np.array([3, 1, 1, 5, 1, 3, 9, 1, 1, 3, 1, 1, 3, 7])
    got = ir.requantize(acc, multiplier, 2).ravel()
    expected = [requantize_by_hand(int(i), int(m), 2) for i, m in zip(acc.ravel(), multiplier)]
    assert got.tolist() == expected
    assert ir.requantize(np.array([-2, 2, -6, 6]).reshape(1, 4, 1, 1), np.ones(4, np.int64), 2).ravel().tolist() == [
        0, 1, -1, 2,  # -0.5 -> 0, 0.5 -> 1, -1.5 -> -1, 1.5 -> 2: half up, not half to even or away from zero
    ]  # fmt: skip


@pytest.mark.parametrize("rounding", ["nearest", "floor"])
@pytest.mark.parametrize("T", [1, 2])
def test_threshold_neuron_follows_the_spec_recurrence_with_leak_one_quarter(T, rounding):
    F_bits, L = 2, 5
    # grid units of 1/4 code: exact halves (2, 6, -2, -6), negatives, saturation (30) and values between
    J0 = [2, 6, -2, -6, 0, 1, 3, 5, 7, 30, -30, 9, 10, 4]
    J1 = [1, -1, 2, 6, -3, 0, 9, -5, 2, 30, 30, -9, 3, 4]
    n = len(J0)
    J = np.array([J0, J1][:T]).reshape(T, n, 1, 1)  # B = 1, one element per channel
    got = ir.threshold_neuron(J, T, F_bits, rounding, 1, 2, L)
    expected = [threshold_by_hand([J0[e], J1[e]][:T], F_bits, rounding, 1, 2, L) for e in range(n)]
    assert got.reshape(T, n).T.tolist() == expected


def test_threshold_neuron_worked_example_of_the_format_doc():
    # F = 2, nearest, leak 1/4: U0 = 6 -> q0 = floor(8 / 4) = 2; U1 = floor((6 - 8) / 4) + 1 = -1 + 1 = 0 -> q1 = 0
    J = np.array([6, 1]).reshape(2, 1, 1, 1)
    assert ir.threshold_neuron(J, 2, 2, "nearest", 1, 2, 5).ravel().tolist() == [2, 0]


def test_lut_neuron_looks_up_j_minus_min_and_clips_at_both_ends():
    lut = np.array([0, 1, 1, 2, 3, 5, 8], np.int16)
    J = np.array([-100, -3, -2, 0, 2, 3, 100]).reshape(1, 7, 1, 1)
    got = ir.lut_neuron(J, lut, -3).ravel().tolist()
    assert got == [int(lut[min(max(j + 3, 0), 6)]) for j in J.ravel()] == [0, 0, 1, 2, 5, 8, 8]


def neuron_node(node_id: str, source: str, tensors: dict, channels: int, T: int, **fields) -> dict:
    tensors[f"{node_id}.multiplier"] = fields.pop("multiplier", np.full(channels, 3, np.int64))
    return {
        "id": node_id, "op": "neuron", "inputs": [source], "module": "test", "T": T,
        "multiplier": f"{node_id}.multiplier", "shift": 4, "levels": 7, "n": 1.0, "zero": 0, "encoding": "binary",
        "rest": None, "kind": "threshold", "fraction_bits": 3, "rounding": "nearest",
        "leak": {"multiplier": 1, "shift": 2}, **fields,
    }  # fmt: skip


def test_a_spiking_graph_returns_every_neurons_codes_and_the_outputs_real_values(tmp_path):
    tensors, T = {}, 2
    rng = np.random.default_rng(7)
    w1 = rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    w2 = rng.integers(-128, 128, (2, 4, 1, 1)).astype(np.int8)
    nodes = [
        conv_node("c1", "input", w1, tensors, padding=1, zero=np.full(3, 128)),
        neuron_node("n1", "c1", tensors, 4, T),
        conv_node("c2", "n1", w2, tensors, bias=np.array([-5, 9])),
        {"id": "out", "op": "time_sum", "inputs": ["c2"]},
    ]
    scale = np.array([0.125, 3.0])
    graph = header(nodes, [output("out", 2, tensors, divisor=T, scale=scale)], T=T)
    images = random_images((1, 3, 5, 6))
    result = run_file(tmp_path, graph, tensors, images)
    acc1 = torch_conv(images.astype(np.int64), w1, np.zeros(4, np.int64), np.full(3, 128), 1, 1, 1)
    J = [requantize_by_hand(int(i), 3, 4) for i in acc1.ravel()]
    q = np.array([threshold_by_hand([j, j], 3, "nearest", 1, 2, 7) for j in J]).T.reshape(T, *acc1.shape[1:])
    assert list(result.codes) == ["n1"] and np.array_equal(result.codes["n1"], q)
    acc2 = torch_conv(q, w2, np.array([-5, 9]), None, 1, 0, 1)
    assert np.array_equal(result.outputs["out"], acc2.sum(axis=0, keepdims=True))
    assert np.array_equal(result.values["out"], acc2.sum(axis=0, keepdims=True) * scale[None, :, None, None] / T)


def test_a_lut_graph_runs_the_requantized_accumulator_through_the_table(tmp_path):
    tensors = {"n.lut": np.arange(0, 40, 2, dtype=np.int16) // 3}
    w = np.random.default_rng(8).integers(-4, 5, (2, 3, 1, 1)).astype(np.int8)
    lut_fields = {"kind": "lut", "lut": "n.lut", "lut_min": -6, "grid": 4, "levels": 12, "leak": None}
    nodes = [conv_node("c", "input", w, tensors), neuron_node("n", "c", tensors, 2, 1, **lut_fields)]
    images = random_images((1, 3, 4, 4))
    result = run_file(tmp_path, header(nodes, []), tensors, images)
    acc = torch_conv(images.astype(np.int64), w, np.zeros(2, np.int64), None, 1, 0, 1)
    expected = [int(tensors["n.lut"][min(max(requantize_by_hand(int(i), 3, 4) + 6, 0), 19)]) for i in acc.ravel()]
    assert result.codes["n"].ravel().tolist() == expected


# -- bad files -----------------------------------------------------------------------------------------------------


def bad_graph(tensors: dict, **changes) -> dict:
    node = conv_node("c1", "input", np.ones((2, 3, 1, 1), np.int8), tensors) | changes
    return header([node], [output("c1", 2, tensors)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"op": "conv3d"}, r"node 'c1' \(conv3d\): unknown op 'conv3d'"),
        ({"weight": "nowhere"}, r"node 'c1' \(conv\): tensor weight='nowhere' is missing"),
        ({"inputs": ["later"]}, r"node 'c1' \(conv\): inputs \['later'\] must name earlier nodes"),
        ({"groups": 2}, r"node 'c1' \(conv\): weight shape \[2, 3, 1, 1\] does not fit 3 input channels in 2 groups"),
        ({"stride": 1}, r"node 'c1' \(conv\): field 'stride' must be a pair of integers"),
        ({"accumulator_bits": 32}, r"node 'c1' \(conv\): accumulator_bits 32 does not match bound"),
    ],
    ids=["unknown op", "missing tensor", "input not earlier", "groups", "stride not a pair", "accumulator bits"],
)
def test_a_bad_node_raises_a_value_error_naming_it(tmp_path, change, message):
    tensors = {}
    with pytest.raises(ValueError, match=message):
        run_file(tmp_path, bad_graph(tensors, **change), tensors, random_images())


def test_tensors_of_the_wrong_dtype_or_shape_are_named_with_their_node(tmp_path):
    tensors = {}
    graph = bad_graph(tensors)
    tensors["c1.weight"] = tensors["c1.weight"].astype(np.float32)
    with pytest.raises(ValueError, match=r"node 'c1' \(conv\): tensor weight='c1.weight' has dtype float32"):
        run_file(tmp_path, graph, tensors, random_images())
    tensors["c1.weight"] = np.ones((2, 3, 1, 1), np.int8)
    tensors["c1.bias"] = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match=r"node 'c1' \(conv\): tensor bias='c1.bias' has shape \[3\], expected \[2\]"):
        run_file(tmp_path, graph, tensors, random_images())


def test_a_neuron_with_another_T_than_the_graph_or_no_leak_at_T_2_is_refused(tmp_path):
    tensors = {}
    graph = bad_graph(tensors)
    graph["nodes"].append(neuron_node("n", "c1", tensors, 2, T=1))
    graph["T"] = 2
    with pytest.raises(ValueError, match=r"node 'n' \(neuron\): T=1 differs from the graph's T=2"):
        run_file(tmp_path, graph, tensors, random_images())
    graph["nodes"][-1].update(T=2, leak=None)
    with pytest.raises(ValueError, match=r"node 'n' \(neuron\): leak must be"):
        run_file(tmp_path, graph, tensors, random_images())


def test_inputs_that_could_overflow_int64_are_refused_instead_of_wrapping(tmp_path):
    tensors = {}
    graph = bad_graph(tensors)
    tensors["c1.weight"] = np.full((2, 3, 1, 1), 32767, np.int16)
    tensors["c1.zero"], graph["nodes"][1]["input_zero"] = np.full(3, -(2**50)), "c1.zero"
    with pytest.raises(ValueError, match=r"node 'c1' \(conv\): its accumulator could overflow int64"):
        run_file(tmp_path, graph, tensors, random_images())
    tensors["c1.weight"], graph["nodes"][1]["input_zero"] = np.ones((2, 3, 1, 1), np.int8), None
    graph["nodes"].append(neuron_node("n", "c1", tensors, 2, T=1, multiplier=np.full(2, 2**60)))
    with pytest.raises(ValueError, match=r"node 'n' \(neuron\): I \* multiplier could overflow int64"):
        run_file(tmp_path, graph, tensors, random_images())


def test_a_graph_of_another_format_version_is_refused():
    with pytest.raises(ValueError, match="not a spikedet-integer-graph version 1"):
        ir.run({**header([], []), "version": 2}, {}, random_images())


# -- the smoke test and the layer rule -----------------------------------------------------------------------------


def test_main_prints_each_outputs_shape_and_sum_and_exits_2_on_a_bad_file(tmp_path, capsys):
    tensors = {}
    graph = header([conv_node("c", "input", np.ones((2, 3, 1, 1), np.int8), tensors)], [output("c", 2, tensors)])
    images = random_images((1, 3, 4, 5))
    np.save(tmp_path / "images.npy", images)
    assert ir.main([str(save(tmp_path, graph, tensors)), str(tmp_path / "images.npy")]) == 0
    total = int(images.astype(np.int64).sum()) * 2
    assert f"c: shape [1, 2, 4, 5] sum {total}" in capsys.readouterr().out
    assert ir.main([str(tmp_path / "images.npy"), str(tmp_path / "images.npy")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_the_reference_imports_only_numpy_safetensors_and_the_standard_library():
    tree = ast.parse(Path(ir.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported - set(sys.stdlib_module_names) == {"numpy", "safetensors"}
    code = "import sys, spikedet.integer_reference; print(sorted({'torch', 'ultralytics'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


# -- the format document's worked example ------------------------------------------------------------------------


def test_the_worked_example_of_the_format_document_computes_the_numbers_it_states(tmp_path):
    text = (ROOT / "docs" / "integer-format.md").read_text(encoding="utf-8")
    section = text.split("## 9. Worked example")[1].split("\n## ")[0]
    graph, tensor_specs, image, expected = (json.loads(block.split("```")[0]) for block in section.split("```json")[1:])
    tensors = {k: np.array(v["data"], v["dtype"]).reshape(v["shape"]) for k, v in tensor_specs.items()}
    images = np.array(image["image"], np.uint8).reshape(1, 3, 1, 1)
    result = run_file(tmp_path, graph, tensors, images)
    assert result.codes["n1"].reshape(2, 2).tolist() == expected["codes"]["n1"]
    assert result.outputs["p"].ravel().tolist() == expected["outputs"]["p"]
    assert result.values["p"].ravel().tolist() == expected["values"]["p"]
    floats = np.array(image["image"], np.float32).reshape(1, 3, 1, 1) / np.float32(255)
    assert np.array_equal(ir.run(graph, tensors, floats).outputs["p"], result.outputs["p"])
