"""An integer graph (``docs/integer-format.md``, version 1) as an ONNX model, bit-exact on ONNX Runtime.

Every tensor between ops holds integers whose range per channel is tracked exactly
(:mod:`spikedet.convert.integer_onnx_ops`); each op is emitted in a type that range proves exact.
``convs="auto"`` (the default) picks per conv and neuron what measured fastest on ONNX Runtime's CPU provider;
``convs="integer"`` keeps every op an integer op. The metadata records each conv's and neuron's choice.

- Convs whose input is one int8 tensor (codes and zero point within ``[-64, 64]``, int8 weights) are
  ``ConvInteger`` (MLAS' int8 kernels beat its float32 ones). Other convs, ``auto``: a float32 ``Conv`` on the
  integer codes and integer weights wherever the proven bound ``sum |W| * max |x - zero|`` (plus ``|bias|``
  when the bias is inside the Conv) is below 2**24: every product and partial sum is then an integer float32
  represents exactly, so the result is exact in any summation order (ONNX Runtime's CPU Conv sums products
  directly, im2col + SGEMM or its NCHWc kernels; a Winograd or FFT conv would not be exact, and the tests
  check a 3x3 conv near 2**24). Else ``ConvInteger`` with ``uint8`` weights (``W + 128``, zero point 128):
  codes travel as ``int8`` within ``[-64, 64]`` (the U8S8 kernel; x86 without VNNI pairs products in
  ``vpmaddubsw``, which saturates at 2**15, and ``2 * 255 * 64`` is below it), else as ``uint8`` (U8U8), wider
  codes as 7-bit digits, one conv each, recombined as ``sum 128**k * conv_k``; ``int16`` weights as a low and a
  high byte. A uniform zero offset is ``ConvInteger``'s zero point (its padding holds it, as the spec pads
  ``x - zero`` with 0); per-channel zeros pad by hand and fold a constant.
- A conv's bias, digit factors and zero-offset constants stay symbolic (a per-channel affine
  :class:`~spikedet.convert.integer_onnx_ops.Value`) until a consumer needs the tensor.
- Neurons with ``T == 1``, ``auto``: ``idx = clip(floor((I * m + add) / 2**P), 0, top)`` is one float64
  ``BatchNormalization`` (``I * m / 2**P + add / 2**P``, exact below 2**53 in units of ``2**-P``) after a
  ``Clip`` of ``I`` to the interval that decides the result (fused into a float Conv by ONNX Runtime), then a
  ``Cast`` to int32 (truncation: the floor of a value made non-negative) and a ``GatherElements`` lookup in a
  table of the codes (a threshold neuron's is ``clip(j, 0, L)``), minus an offset: the neuron's zero, or the
  shift that centres codes one int8 window wide (then an int8 consumer reads an int8 table). ``integer``, and
  where float64 cannot hold the products: integer requantization, the floor division by ``2**k`` made on a
  non-negative dividend (ONNX ``Div`` truncates). Neurons over ``T > 1`` timesteps run in integer ops.
- ``MaxPool`` has no fast integer kernels: integer codes beyond 8 bits pool in float64 (exact below 2**53).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from spikedet.convert.integer_onnx_ops import (
    DOUBLE,
    FLOAT,
    FLOAT_EXACT,
    INT8,
    INT16,
    INT32,
    INT64,
    NUMPY,
    UINT8,
    Builder,
    Term,
    Value,
    affine_range,
    conv_bound,
    conv_range,
    fits,
    ints,
    magnitude,
    table_plan,
    wide,
)
from spikedet.errors import SpikedetError

FORMAT, VERSION = "spikedet-integer-graph", 1
#: ONNX metadata key of the JSON that describes the model (format, version, T, outputs, codes, head, convs)
METADATA_KEY = "spikedet.integer_graph"
#: how convs are emitted: float32 Conv where its proven bound allows, else ConvInteger; or ConvInteger only
CONVS = ("auto", "integer")
#: int8 codes fed to ConvInteger stay within [-WINDOW, WINDOW]: no int16 saturation on any x86 kernel
WINDOW = 64
DIGIT = 128  # radix of the digits wider codes are split into (each digit - 64 lies in the window)


def _field(node: dict, key: str):
    if key not in node:
        raise SpikedetError(f"integer graph node {node.get('id')!r} ({node.get('op')}): missing field {key!r}")
    return node[key]


def _tensor(tensors: dict, node: dict, key: str, dtypes: tuple, optional: bool = False):
    name = node.get(key) if optional else _field(node, key)
    if name is None and optional:
        return None
    if name not in tensors:
        raise SpikedetError(f"integer graph node {node['id']!r}: tensor {name!r} ({key}) is not in the tensors")
    array = np.asarray(tensors[name])
    if array.dtype not in dtypes:
        raise SpikedetError(f"integer graph node {node['id']!r}: {key} is {array.dtype}, expected one of "
                            f"{', '.join(str(np.dtype(d)) for d in dtypes)}")
    return array


class _Exporter:
    def __init__(self, graph: dict, tensors: dict, convs: str):
        self.graph, self.tensors, self.b, self.convs = graph, tensors, Builder(), convs
        self.T = int(graph.get("T", 1))
        self.values: dict[str, Value] = {}
        self.codes: list[tuple[str, Value]] = []
        self.pools: list[tuple[str, Value]] = []  # maxpooled codes: trains of their own (``codes="trains"``)
        self.offsets: dict[str, int] = {}  # ``codes="trains"``: code = stored value + offset, per output
        self.choices: dict[str, str] = {}  # conv id -> "float32" | "integer"; neuron id -> "float64" | "integer"

    def input(self, spec: dict) -> Value:
        """The image codes as float32 (``round(x * 255)``, half to even); integer convs cast them to uint8."""
        b, channels = self.b, int(spec.get("channels", 3))
        x = b.op("Mul", ["images", b.const(255.0, FLOAT)])
        q = b.op("Clip", [b.op("Round", [x]), b.const(0.0, FLOAT), b.const(255.0, FLOAT)])
        if self.T > 1:
            q = b.op("Concat", [q] * self.T, axis=0)
        return Value.of(Term(q, FLOAT, ints(np.zeros(channels)), ints(np.full(channels, 255))))

    def feeds(self, term: Term, zero: int, lo: int, hi: int) -> list[tuple]:
        """How integer codes in ``[lo, hi]`` (``zero`` inside) reach ConvInteger: per conv input ``(name, type,
        zero point, digit factor, lowest, highest fed value)``."""
        b = self.b
        if -WINDOW <= lo and hi <= WINDOW:
            return [(b.cast(term, INT8).name, INT8, zero, 1, lo, hi)]
        if hi - lo <= 2 * WINDOW:  # one window wide: shift it in int8 (the wrap-around cancels: the result fits)
            off = lo + WINDOW
            wrapped = b.op("Cast", [term.name], to=INT8) if term.dtype != INT8 else term.name
            return [(b.op("Add", [wrapped, b.const((128 - off) % 256 - 128, INT8)]), INT8, zero - off, 1, -WINDOW,
                     hi - off)]
        if 0 <= lo and hi <= 255:
            return [(b.cast(term, UINT8).name, UINT8, zero, 1, lo, hi)]
        base = b.cast(term, wide([lo], [hi]))
        base = b.affine([(base, ints([1]))], ints([-lo])) if lo else base  # digits of x - lo, x - lo >= 0
        out, k = [], 0
        while DIGIT**k <= hi - lo:
            top = (hi - lo) // DIGIT**k < DIGIT
            digit = b.op("Div", [base.name, b.const(DIGIT**k, base.dtype)]) if k else base.name
            digit = b.op("Cast", [digit], to=INT8)  # keeps the value mod 256
            if not top:
                digit = b.op("BitwiseAnd", [digit, b.const(DIGIT - 1, INT8)])
            high = (hi - lo) // DIGIT**k if top else DIGIT - 1
            off = 0 if high <= WINDOW else WINDOW
            if off:
                digit = b.op("Add", [digit, b.const(-off, INT8)])
            z = (zero - lo) // DIGIT**k if top else (zero - lo) // DIGIT**k % DIGIT
            out.append((digit, INT8, z - off, DIGIT**k, -off, high - off))
            k += 1
        return out

    def conv(self, node: dict, x: Value) -> Value:
        w = _tensor(self.tensors, node, "weight", (np.int8, np.int16)).astype(np.int64)
        out, groups = w.shape[0], int(node.get("groups", 1))
        bias = _tensor(self.tensors, node, "bias", (np.int64, np.int32), optional=True)
        bias = ints(np.zeros(out) if bias is None else bias)
        zero = _tensor(self.tensors, node, "input_zero", (np.int64, np.int32), optional=True)
        zero = ints(np.zeros(x.channels) if zero is None else zero)
        if w.ndim != 4 or w.shape[1] * groups != x.channels or out % groups or len(bias) != out:
            raise SpikedetError(f"conv {node['id']!r}: weight {list(w.shape)} with groups={groups} does not fit "
                                f"{x.channels} input channels and {len(bias)} biases")
        # the accumulator's range: x - zero inside the image, 0 in the padding
        xlo, xhi = np.minimum(x.lo - zero, 0), np.maximum(x.hi - zero, 0)
        acc = conv_range(w, groups, xlo, xhi)
        attrs = {"pads": [*node.get("padding", [0, 0])] * 2, "strides": list(node.get("stride", [1, 1])),
                 "group": groups}
        xmax = magnitude(xlo, xhi)
        exact = max(xmax) < FLOAT_EXACT and max(conv_bound(w, groups, xmax)) < FLOAT_EXACT
        if self.convs == "auto" and exact and not self.one_byte(x, zero, w):  # int8 codes: ConvInteger is faster
            self.choices[node["id"]] = "float32"
            return self.float_conv(x, w, bias, zero, attrs, acc[0] + bias, acc[1] + bias)
        self.choices[node["id"]] = "integer"
        return self.integer_conv(node, x, w, bias, zero, attrs, acc[0] + bias, acc[1] + bias)

    @staticmethod
    def one_byte(x: Value, zero, w: np.ndarray) -> bool:
        """Whether ``x`` reaches ConvInteger as one int8 tensor as it is: codes and zero point (uniform) within
        ``[-WINDOW, WINDOW]``, int8 weights."""
        if x.single is None or len({*x.offset}) != 1 or len({*zero}) != 1 or w.min() < -128 or w.max() > 127:
            return False
        z = int(zero[0] - x.offset[0])
        return -WINDOW <= min(*x.single.lo, z) and max(*x.single.hi, z) <= WINDOW

    def float_conv(self, x: Value, w: np.ndarray, bias, zero, attrs: dict, alo, ahi) -> Value:
        """A float32 Conv, exact: every partial sum is an integer below 2**24 (checked by the caller for
        ``x - zero``, here for what is fed and the bias)."""
        b, groups = self.b, attrs["group"]
        shift = x.offset - zero  # x - zero = (sum of the terms) + shift
        fed = x.single if x.single is not None and fits(x.single.lo, x.single.hi, FLOAT) else None
        fed = b.cast(fed, FLOAT) if fed is not None else b.affine(x.terms, ints(np.zeros(x.channels)), True)
        bound = conv_bound(w, groups, magnitude(fed.lo, fed.hi))
        folded = conv_range(w, groups, shift, shift)[0]  # sum W * shift, where the Conv is fed without it
        if fed.dtype != FLOAT or any(shift != 0) and (any(attrs["pads"]) or max(bound) >= FLOAT_EXACT):
            # pad x - zero with 0: materialize it (its range is that of the codes, float32 holds it)
            fed = b.affine(x.terms, shift, allow_float=True)
            fed = b.cast(fed, FLOAT)
            bound, folded = conv_bound(w, groups, magnitude(fed.lo, fed.hi)), ints(np.zeros(len(bias)))
        total = bias + folded
        inputs = [fed.name, b.const(w, FLOAT)]
        if max(bound + magnitude(total, total)) < FLOAT_EXACT:
            inputs.append(b.const(total, FLOAT))
            total = ints(np.zeros(len(bias)))
        return Value.of(Term(b.op("Conv", inputs, **attrs), FLOAT, alo - total, ahi - total), total)

    def integer_conv(self, node: dict, x: Value, w: np.ndarray, bias, zero, attrs: dict, alo, ahi) -> Value:
        """ConvInteger on bytes: int8 weights (int16 split into two bytes), codes in digits of 7 bits."""
        b, groups = self.b, attrs["group"]
        out = len(bias)
        if x.single is not None and all(o == x.offset[0] for o in x.offset):  # feed the term, shift the zero
            term, zero = b.integral(x.single), zero - x.offset[0]
        else:
            term = b.integral(b.plain(x, allow_float=True))
        offset, pads, z = bias, attrs["pads"], int(min(zero))
        if any(zc != z for zc in zero):  # pad with each channel's zero by hand, pad(x - zero) + zero; fold the rest
            t = b.cast(term, wide(np.minimum(term.lo, zero), np.maximum(term.hi, zero)))
            ph, pw = pads[:2]
            shift = b.const(zero, t.dtype, True)
            padded = b.op("Pad", [b.op("Sub", [t.name, shift]), b.const([0, 0, ph, pw, 0, 0, ph, pw], INT64)])
            term, pads = Term(b.op("Add", [padded, shift]), t.dtype, t.lo, t.hi), [0, 0, 0, 0]
            offset = offset - conv_range(w, groups, zero - z, zero - z)[0]  # sum W * (zero[c] - z)
        # int16 weights: a low byte and a signed high byte
        parts = [(w, 1)] if -128 <= w.min() and w.max() <= 127 else [(w & 255, 1), (w >> 8, 256)]
        terms = []
        for fed, fed_type, fed_zero, factor, flo, fhi in self.feeds(term, z, min(*term.lo, z), max(*term.hi, z)):
            xl = ints(np.full(x.channels, min(flo - fed_zero, 0)))
            xh = ints(np.full(x.channels, max(fhi - fed_zero, 0)))
            for part, part_factor in parts:
                w_zero = 0 if part.min() >= 0 else 128  # MLAS' fast kernels take uint8 weights
                plo, phi = conv_range(part, groups, xl, xh)
                if not fits(plo, phi, INT32):
                    raise SpikedetError(f"conv {node['id']!r}: a partial sum can exceed int32")
                name = b.op("ConvInteger", [fed, b.const(part + w_zero, UINT8), b.const(fed_zero, fed_type),
                                            b.const(w_zero, UINT8)], pads=pads, strides=attrs["strides"],
                            group=groups)
                terms.append((Term(name, INT32, plo, phi), ints(np.full(out, factor * part_factor))))
        return Value(terms, offset, alo, ahi)

    def neuron(self, node: dict, x: Value) -> Value:
        b, c = self.b, x.channels
        m = ints(_tensor(self.tensors, node, "multiplier", (np.int64, np.int32)))
        shift, levels, kind = int(_field(node, "shift")), int(_field(node, "levels")), _field(node, "kind")
        if len(m) != c or shift < 1:
            raise SpikedetError(f"neuron {node['id']!r}: {len(m)} multipliers for {c} channels, shift {shift}")
        if kind == "lut":
            table = _tensor(self.tensors, node, "lut", (np.int16, np.int32, np.int64)).astype(np.int64)
            # q = lut[clip(J - lut_min, 0, K - 1)], J - lut_min = floor((I m + 2**(S-1) - lut_min 2**S) / 2**S)
            add, power = 2 ** (shift - 1) - int(_field(node, "lut_min")) * 2**shift, shift
        elif kind == "threshold":
            bits = int(_field(node, "fraction_bits"))
            rest = 2 ** (bits - 1) if node.get("rounding", "nearest") == "nearest" else 0
            if self.T > 1:
                return Value.of(self.membrane(node, x, m, shift, bits, rest, levels))
            # q = clip(floor((floor((I m + 2**(S-1)) / 2**S) + R) / 2**F), 0, L): one division, table clip(j, 0, L)
            table, add, power = np.arange(levels + 1), 2 ** (shift - 1) + rest * 2**shift, shift + bits
        else:
            raise SpikedetError(f"neuron {node['id']!r}: unknown kind {kind!r} (threshold, lut)")
        zero = int(node.get("zero", 0)) if self.convs == "auto" else 0
        dtype = FLOAT if self.convs == "auto" else (UINT8 if table.min() >= 0 and table.max() <= 255 else INT32)
        t, plan = x.single, None
        if self.convs == "auto":
            t = t or b.affine(x.terms, ints(np.zeros(c)), allow_float=True)  # x = t + x.offset
            plan = table_plan(t.lo, t.hi, m, x.offset * m + add, power, table)
        if plan is None:  # integer arithmetic (or float64 cannot hold the products), then the table
            self.choices[node["id"]] = "integer"
            index = self.requantize(x, m, add, power, len(table) - 1)
            name = b.lookup(index, table, dtype) if kind == "lut" else b.cast(index, dtype).name
            return Value.of(Term(name, dtype, ints(np.full(c, table.min())), ints(np.full(c, table.max()))))
        self.choices[node["id"]] = "float64"
        if max(plan.codes_hi) - min(plan.codes_lo) <= 2 * WINDOW:  # codes - zero within int8's window
            zero = int(min(plan.codes_lo)) + WINDOW
        name, (low, high) = t.name, plan.clip
        if plan.per_channel:  # Max and Min with per-channel bounds
            name = b.op("Min", [b.op("Max", [name, b.const(low, t.dtype, True)]), b.const(high, t.dtype, True)])
        elif low is not None or high is not None:  # one Clip (ONNX Runtime fuses it into a Conv before it)
            bounds = ["" if v is None else b.const(v, t.dtype) for v in (low, high)]
            name = b.op("Clip", [name, *bounds[: 2 if high is not None else 1]])
        t = Term(name, t.dtype, plan.lo, plan.hi)
        v = b.op("BatchNormalization", [b.cast(t, DOUBLE).name, b.const(plan.scale, DOUBLE),
                                        b.const(plan.bias, DOUBLE), b.const(np.zeros(c), DOUBLE),
                                        b.const(np.ones(c), DOUBLE)], epsilon=0.0)
        index = Term(b.op("Cast", [v], to=INT32), INT32, ints(np.zeros(c)), ints(np.full(c, len(plan.table) - 1)))
        codes = Term(b.lookup(index, plan.table - zero, dtype), dtype, plan.codes_lo - zero, plan.codes_hi - zero)
        return Value.of(codes, ints(np.full(c, zero)))

    def membrane(self, node: dict, x: Value, m, shift: int, bits: int, rest: int, levels: int) -> Term:
        """A threshold neuron over T timesteps: charge, fire, reset and leak, in integer ops."""
        b, c = self.b, x.channels
        leak = node.get("leak") or {"multiplier": 0, "shift": 0}
        a, s = int(leak["multiplier"]), int(leak["shift"])
        plain = b.plain(x)
        steps = b.op("Split", [plain.name], outputs=self.T, axis=0, num_outputs=self.T)
        one, zero, codes, u = ints([1]), ints([0]), [], None
        for name in steps:
            step = Term(name, plain.dtype, plain.lo, plain.hi)
            j = b.floor_div(b.affine([(step, m)], ints([2 ** (shift - 1)])), shift)
            if u is not None:  # U[t] = floor((U[t-1] - q[t-1] 2**F) a / 2**s) + J[t]
                residue = b.affine([(u, ints([a])), (codes[-1], ints([-a * 2**bits]))], zero)
                j = b.affine([(b.floor_div(residue, s), one), (j, one)], zero)
            u = j
            codes.append(b.clip_div(b.affine([(u, one)], ints([rest])), bits, levels))
        dtype = wide(np.concatenate([q.lo for q in codes]), np.concatenate([q.hi for q in codes]))
        q = b.op("Concat", [b.cast(q, dtype).name for q in codes], axis=0)
        return Term(q, dtype, ints(np.zeros(c)), ints(np.full(c, levels)))

    def requantize(self, x: Value, m: np.ndarray, add: int, power: int, top: int) -> Term:
        """``clip(floor((x * m + add) / 2**power), 0, top)`` in integer ops. Where the products need int64 but
        ``x`` fits int32, ``x`` is first clipped to the interval that decides the result (below it the result
        is 0, above it ``top``): the products then fit int32, two cheap ops instead of int64 arithmetic."""
        b, d = self.b, 2**power
        direct = [(t, c * m) for t, c in x.terms], x.offset * m + add  # the conv's bias and digit factors folded in
        partial = affine_range(*direct)[2]
        raw = None if fits(-partial, partial, INT32) or min(m) < 1 else b.affine(x.terms, ints([0]))  # x - offset
        if raw is None or raw.dtype != INT32:
            return b.clip_div(b.affine(*direct), power, top)
        # v = x m + add >= 0 from `first` on and <= (top + 1) d - 1 up to `last`; with m <= d the ends of that
        # interval give 0 and top themselves, else one step further out does (and the Clip below catches it)
        wider = int(max(m) > d)
        first = ints([-(add // mc) - wider for mc in m]) - x.offset
        last = ints([((top + 1) * d - 1 - add) // mc + wider for mc in m]) - x.offset
        name, lo, hi = raw.name, raw.lo, raw.hi
        if any(first > raw.lo):
            first = np.minimum(np.maximum(first, raw.lo), raw.hi)
            name, lo, hi = b.op("Max", [name, b.const(first, INT32, True)]), np.maximum(lo, first), np.maximum(hi, first)
        if any(last < raw.hi):
            last = np.maximum(np.minimum(last, raw.hi), raw.lo)
            name, lo, hi = b.op("Min", [name, b.const(last, INT32, True)]), np.minimum(lo, last), np.minimum(hi, last)
        return b.clip_div(b.affine([(Term(name, INT32, lo, hi), m)], x.offset * m + add), power, top)

    def narrow(self, term: Term) -> Term:
        """An integer term in the narrowest type that holds its values (moves are cheaper on fewer bytes); float32
        stays (ONNX Runtime's MaxPool on bytes is several times slower than on float32)."""
        for dtype in (UINT8, INT8):
            if term.dtype != FLOAT and fits(term.lo, term.hi, dtype):
                return self.b.cast(term, dtype)
        return term

    def codes_of(self, x: Value) -> tuple[Term, np.ndarray]:
        """``x`` as one term and a per-channel offset (ops that commute with adding a constant keep it)."""
        if x.single is not None:
            return self.narrow(x.single), x.offset
        return self.narrow(self.b.plain(x, allow_float=True)), ints(np.zeros(x.channels))

    def maxpool(self, node: dict, x: Value) -> Value:
        (t, offset), b = self.codes_of(x), self.b
        k, s, p = int(_field(node, "kernel")), int(node.get("stride", 1)), int(node.get("padding", 0))
        pooled = t
        if t.dtype not in (UINT8, INT8, FLOAT):  # no integer MaxPool kernel: float64 is exact
            if not fits(t.lo, t.hi, INT64) or max(magnitude(t.lo, t.hi)) >= 2**53:
                raise SpikedetError(f"maxpool {node['id']!r}: values beyond 2**53")
            pooled = b.cast(t, DOUBLE)
        name = b.op("MaxPool", [pooled.name], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
        if pooled is not t:
            name = b.op("Cast", [name], to=t.dtype)
        return Value.of(Term(name, t.dtype, t.lo, t.hi), offset)

    def upsample(self, node: dict, x: Value) -> Value:
        """Nearest neighbour: ``Resize`` with ``floor(y / s)`` coordinates copies values (several times faster on
        ONNX Runtime than ``Expand`` and ``Reshape``)."""
        (t, offset), b, s = self.codes_of(x), self.b, int(_field(node, "scale"))
        name = b.op("Resize", [t.name, "", b.const([1.0, 1.0, s, s], FLOAT)], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return Value.of(Term(name, t.dtype, t.lo, t.hi), offset)

    def concat(self, node: dict, xs: list[Value]) -> Value:
        parts = [self.codes_of(x) for x in xs]
        lo, hi = np.concatenate([t.lo for t, _ in parts]), np.concatenate([t.hi for t, _ in parts])
        small = next((d for d in (UINT8, INT8) if fits(lo, hi, d)), None)
        dtype = small or (FLOAT if any(t.dtype == FLOAT for t, _ in parts) and fits(lo, hi, FLOAT) else wide(lo, hi))
        name = self.b.op("Concat", [self.b.cast(t, dtype).name for t, _ in parts], axis=1)
        return Value.of(Term(name, dtype, lo, hi), np.concatenate([o for _, o in parts]))

    def time_sum(self, node: dict, x: Value) -> Value:
        if self.T == 1:
            return x
        t = self.b.plain(x, True)
        steps = self.b.op("Split", [t.name], outputs=self.T, axis=0, num_outputs=self.T)
        one = ints([1])
        return Value([(Term(name, t.dtype, t.lo, t.hi), one) for name in steps], ints([0]), t.lo * self.T,
                     t.hi * self.T)

    def run(self, codes: bool | str) -> list[tuple[str, Term]]:
        graph = self.graph
        if graph.get("format") != FORMAT or graph.get("version") != VERSION:
            raise SpikedetError(f"not a {FORMAT} version {VERSION}: format {graph.get('format')!r}, "
                                f"version {graph.get('version')!r}")
        spec = graph.get("input") or {"id": "input"}
        self.values[spec.get("id", "input")] = self.input(spec)
        for node in _field(graph, "nodes"):
            op, nid = _field(node, "op"), _field(node, "id")
            if op == "input":
                continue
            self.b.scope = nid
            missing = [i for i in node.get("inputs", []) if i not in self.values]
            if missing or not node.get("inputs"):
                raise SpikedetError(f"node {nid!r} ({op}) reads {missing or 'nothing'} before it is defined")
            if nid in self.values:
                raise SpikedetError(f"node id {nid!r} is used twice")
            xs = [self.values[i] for i in node["inputs"]]
            if op == "add":
                if len({x.channels for x in xs}) != 1:
                    raise SpikedetError(f"add {nid!r}: inputs with different channel counts")
                value = Value([tc for x in xs for tc in x.terms], sum(x.offset for x in xs),
                              sum(x.lo for x in xs), sum(x.hi for x in xs))
            elif op in ("conv", "time_sum", "neuron", "maxpool", "upsample"):
                value = getattr(self, op)(node, xs[0])
                if op == "neuron":
                    self.codes.append((nid, value))
                elif op == "maxpool":
                    self.pools.append((nid, value))
            elif op == "concat":
                value = self.concat(node, xs)
            else:
                raise SpikedetError(f"node {nid!r}: unknown op {op!r}")
            self.values[nid] = value
        outputs = []
        for out in _field(graph, "outputs"):
            if out.get("id") not in self.values:
                raise SpikedetError(f"output {out.get('name')!r} names an unknown node {out.get('id')!r}")
            self.b.scope = f"output:{out['name']}"
            t = self.b.plain(self.values[out["id"]])
            outputs.append((_field(out, "name"), self.b.cast(t, wide(t.lo, t.hi))))
        if codes == "trains":
            for nid, value in self.codes + self.pools:
                self.b.scope = f"codes:{nid}"
                outputs.append((f"codes:{nid}", self.stored(nid, value)))
            return outputs
        for nid, value in self.codes if codes else []:
            self.b.scope = f"codes:{nid}"
            q = self.b.plain(value)
            outputs.append((f"codes:{nid}", self.b.cast(q, INT16 if fits(q.lo, q.hi, INT16) else INT32)))
        return outputs

    def stored(self, nid: str, value: Value) -> Term:
        """A train's codes as the graph already holds them, ``codes - offset`` (bytes, int16 or float32 holding
        integers: no op, nothing copied), else materialized in the narrowest integer type; ``self.offsets[nid]``
        is the offset."""
        term, offsets = value.single, {int(o) for o in value.offset}
        if term is not None and len(offsets) == 1 and term.dtype in (UINT8, INT8, INT16, FLOAT):
            self.offsets[nid] = offsets.pop()
            return self.b.made(term)
        self.offsets[nid] = 0
        q = self.b.plain(value)
        return self.b.cast(q, next((d for d in (UINT8, INT8, INT16) if fits(q.lo, q.hi, d)), INT32))


def export_integer_onnx(graph: dict, tensors: dict[str, np.ndarray], path, *, codes: bool | str = False,
                        convs: str = "auto", opset: int = 21) -> Path:
    """Write the integer graph as an ONNX model and return its path.

    Input ``images``: float32 ``[B, 3, H, W]`` in [0, 1] (any B, H, W). Outputs: every graph output by its name
    (int32 where its range allows, else int64), then with ``codes`` every neuron's codes as ``codes:<node id>``
    (int16), in graph order. ``codes="trains"``: instead, every spike train a conv may read, for energy
    accounting: each neuron's codes and each max-pooled copy of them (``codes:<node id>``), as the graph holds
    them (one byte, no copy, where it can) with the metadata's ``offset`` to add and ``lo``/``hi`` the stored
    range. ``convs``: ``"auto"`` emits a float32 Conv where the conv's proven bound makes it
    exact, else ConvInteger; ``"integer"`` emits ConvInteger only. The metadata key :data:`METADATA_KEY`
    describes the outputs and, under ``"convs"``, the choice made for each conv and neuron (JSON).
    """
    if opset < 18:
        raise SpikedetError(f"opset {opset} is too old: the integer model needs 18 or later (Split, BitwiseAnd)")
    if convs not in CONVS:
        raise SpikedetError(f"convs={convs!r}: choose {' or '.join(CONVS)}")
    if codes not in (False, True, "trains"):
        raise SpikedetError(f"codes={codes!r}: choose False, True or 'trains'")
    exporter = _Exporter(graph, tensors, convs)
    outputs = exporter.run(codes)
    b = exporter.b
    b.scope = "outputs"
    b.name_outputs(outputs)
    nodes = b.used([name for name, _ in outputs])
    used = {i for node in nodes for i in node.input}
    onnx_graph = helper.make_graph(
        nodes, "spikedet_integer",
        [helper.make_tensor_value_info("images", FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(name, term.dtype, [None, len(term.lo), None, None]) for name, term in outputs],
        [init for init in b.inits if init.name in used])
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="spikedet")
    by_name = {o["name"]: o for o in graph["outputs"]}

    def describe(name: str, term: Term) -> dict:
        """An output in the metadata: real value = acc * scale[c] / divisor; or a neuron's codes."""
        if name not in by_name:
            nid = name.removeprefix("codes:")
            stored = {"offset": exporter.offsets[nid], "lo": int(min(term.lo)), "hi": int(max(term.hi))} \
                if nid in exporter.offsets else {}
            return {"name": name, "dtype": NUMPY[term.dtype].__name__, "codes": nid, **stored}
        out = by_name[name]
        scale = tensors.get(out.get("scale")) if isinstance(out.get("scale"), str) else None
        return {"name": name, "dtype": NUMPY[term.dtype].__name__, "id": out["id"],
                "divisor": out.get("divisor", exporter.T), "scale": None if scale is None else np.ravel(scale).tolist()}

    meta = {"format": graph["format"], "version": graph["version"], "T": exporter.T, "input": "images",
            "outputs": [describe(name, term) for name, term in outputs], "head": graph.get("head"),
            "convs": {"mode": convs, "nodes": exporter.choices}}
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
