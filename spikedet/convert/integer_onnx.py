"""An integer graph (``INTEGER_GRAPH.md``, version 1) as an ONNX model of integer ops, bit-exact on ONNX Runtime.

Every tensor between ops is an integer tensor whose range per channel is tracked here (exact interval
arithmetic on Python integers); each op is emitted in the narrowest type that range proves safe.

- Convs are ``ConvInteger`` with ``uint8`` weights (``W + 128``, weight zero point 128): the fast kernels of
  ONNX Runtime's MLAS take unsigned weights. Codes travel as ``int8`` within ``[-64, 64]`` (the U8S8 kernel;
  x86 without VNNI pairs products in ``vpmaddubsw``, which saturates at 2**15, and ``2 * 255 * 64`` is
  below it), else as ``uint8`` (the U8U8 kernel, which widens to 16 bits and cannot saturate). Wider codes
  are split into 7-bit digits, one conv each, recombined as ``sum 128**k * conv_k``; ``int16`` weights into
  a low and a high byte. A uniform zero offset is ``ConvInteger``'s input zero point (its padding holds the
  zero point, as the spec pads ``x - zero`` with 0); per-channel zeros pad by hand and fold a constant.
- A conv's bias, digit factors and the zero-offset constant stay symbolic (:class:`_Value` is a per-channel
  affine sum of stored tensors) until a consumer needs the tensor: a neuron folds them into its own
  multiply-add, so ``conv -> neuron`` costs Mul, Add, Clip, Div and a Cast per element.
- Floor division by ``2**k``: ONNX ``Div`` truncates, so a dividend is made non-negative first (clipped at 0
  where the result is clipped at 0 anyway, else shifted by a multiple of the divisor).
- ``MaxPool`` has no integer kernels beyond 8 bits: wider codes pool in float64 (exact below 2**53).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from spikedet.errors import SpikedetError

FORMAT, VERSION = "spikedet-integer-graph", 1
#: ONNX metadata key of the JSON that describes the model (format, version, T, outputs, codes, head)
METADATA_KEY = "spikedet.integer_graph"
#: int8 codes fed to ConvInteger stay within [-WINDOW, WINDOW]: no int16 saturation on any x86 kernel
WINDOW = 64
DIGIT = 128  # radix of the digits wider codes are split into (each digit - 64 lies in the window)

_RANGES = {TensorProto.INT8: (-(2**7), 2**7 - 1), TensorProto.UINT8: (0, 2**8 - 1),
           TensorProto.INT16: (-(2**15), 2**15 - 1), TensorProto.INT32: (-(2**31), 2**31 - 1),
           TensorProto.INT64: (-(2**63), 2**63 - 1)}
_NUMPY = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.INT16: np.int16,
          TensorProto.INT32: np.int32, TensorProto.INT64: np.int64, TensorProto.DOUBLE: np.float64,
          TensorProto.FLOAT: np.float32}


def _ints(values) -> np.ndarray:
    """Exact integers (Python ints in an object array: range arithmetic never overflows)."""
    return np.array([int(v) for v in np.asarray(values).ravel()], dtype=object)


def _fits(lo, hi, dtype: int) -> bool:
    low, high = _RANGES[dtype]
    return low <= min(lo) and max(hi) <= high


def _wide(lo, hi) -> int:
    """int32 where the range allows, else int64."""
    if _fits(lo, hi, TensorProto.INT32):
        return TensorProto.INT32
    if _fits(lo, hi, TensorProto.INT64):
        return TensorProto.INT64
    raise SpikedetError(f"an integer range [{min(lo)}, {max(hi)}] does not fit int64")


def _conv_range(weight: np.ndarray, groups: int, xlo, xhi) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the range of ``sum W * x`` for ``x`` in ``[xlo[c], xhi[c]]`` (both include 0)."""
    out, per_group = weight.shape[:2]
    w = weight.astype(np.int64).reshape(out, per_group, -1)
    pos = _ints(np.clip(w, 0, None).sum(2)).reshape(out, per_group)
    neg = _ints(np.clip(w, None, 0).sum(2)).reshape(out, per_group)
    group_of = np.arange(out) // (out // groups)
    xl, xh = xlo.reshape(groups, per_group)[group_of], xhi.reshape(groups, per_group)[group_of]
    return (pos * xl + neg * xh).sum(1), (pos * xh + neg * xl).sum(1)


def _affine_range(terms, offset) -> tuple[np.ndarray, np.ndarray, int]:
    """Range of ``sum coef * term + offset`` and the type every partial sum fits in."""
    lo, hi, bounds = offset, offset, []
    for term, coef in terms:
        plo, phi = np.minimum(coef * term.lo, coef * term.hi), np.maximum(coef * term.lo, coef * term.hi)
        lo, hi = lo + plo, hi + phi
        bounds += [plo, phi, lo, hi]
    every = np.concatenate([np.ravel(b) for b in bounds])
    return lo, hi, _wide(every, every)


@dataclass
class _Term:
    """A tensor in the ONNX graph: name, element type, range of its values per channel."""

    name: str
    dtype: int
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class _Value:
    """A graph tensor as ``sum_k coef_k[c] * term_k + offset[c]`` (per channel c); ``lo``/``hi`` its true range."""

    terms: list[tuple[_Term, np.ndarray]]
    offset: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, term: _Term) -> _Value:
        ones, zeros = _ints(np.ones(len(term.lo))), _ints(np.zeros(len(term.lo)))
        return cls([(term, ones)], zeros, term.lo, term.hi)

    @property
    def channels(self) -> int:
        return len(self.lo)


class _Builder:
    """Collects ONNX nodes and initializers; names every output after the graph node being built."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self.scope, self._count, self._consts, self._casts = "graph", 0, {}, {}

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs) -> str | list[str]:
        self._count += 1
        names = [f"{self.scope}/{op_type}_{self._count}" + (f"_{i}" if outputs > 1 else "") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=names[0], **attrs))
        return names if outputs > 1 else names[0]

    def const(self, array, dtype: int, channel_axis: bool = False) -> str:
        """A constant; with ``channel_axis``, ``[1, C, 1, 1]`` (a scalar if all its values are equal)."""
        values = np.asarray(array)
        if dtype in _RANGES:  # the exporter proves every constant fits; this guards that proof
            assert _fits([values.min()], [values.max()], dtype), (values.min(), values.max(), dtype)
            values = values.astype(np.int64)
        if channel_axis:
            values = values.ravel()
            values = values[0] if (values == values[0]).all() else values.reshape(1, -1, 1, 1)
        data = np.asarray(values).astype(_NUMPY[dtype])
        key = (dtype, data.shape, data.tobytes())
        if key not in self._consts:
            self._consts[key] = f"const/{len(self._consts)}"
            self.inits.append(numpy_helper.from_array(data, self._consts[key]))
        return self._consts[key]

    def cast(self, term: _Term, dtype: int) -> _Term:
        """``term`` as ``dtype`` (values must fit; a cast made once is reused)."""
        if term.dtype == dtype:
            return term
        key = (term.name, dtype)
        if key not in self._casts:
            self._casts[key] = _Term(self.op("Cast", [term.name], to=dtype), dtype, term.lo, term.hi)
        return self._casts[key]

    def affine(self, terms, offset) -> _Term:
        """``sum coef * term + offset`` in the narrowest type every partial sum fits."""
        lo, hi, dtype = _affine_range(terms, offset)
        total = None
        for term, coef in terms:
            name = self.cast(term, dtype).name
            if any(c != 1 for c in coef):
                name = self.op("Mul", [name, self.const(coef, dtype, True)])
            total = name if total is None else self.op("Add", [total, name])
        if any(o != 0 for o in offset):
            total = self.op("Add", [total, self.const(offset, dtype, True)])
        return _Term(total, dtype, lo, hi)

    def plain(self, value: _Value) -> _Term:
        """The value as one stored tensor."""
        (term, coef), = value.terms if len(value.terms) == 1 else [(None, None)]
        if term is not None and all(c == 1 for c in coef) and all(o == 0 for o in value.offset):
            return term
        return self.affine(value.terms, value.offset)

    def floor_div(self, term: _Term, power: int) -> _Term:
        """``floor(term / 2**power)`` (ONNX Div truncates: a negative dividend is shifted up first)."""
        d, lo, hi = 2**power, term.lo, term.hi
        if power == 0:
            return term
        lift = max(0, -(min(lo) // d))
        shifted = term if lift == 0 else self.affine([(term, _ints([1]))], _ints([lift * d]))
        name = self.op("Div", [shifted.name, self.const(d, shifted.dtype)])
        if lift:
            name = self.op("Sub", [name, self.const(lift, shifted.dtype)])
        return _Term(name, shifted.dtype, _ints([v // d for v in lo]), _ints([v // d for v in hi]))

    def clip_div(self, term: _Term, power: int, top: int) -> _Term:
        """``clip(floor(term / 2**power), 0, top)``: clipped to ``[0, (top+1) * 2**power - 1]`` first, so Div
        sees no negative dividend."""
        d, name = 2**power, term.name
        low, high = min(term.lo) < 0, max(term.hi) > (top + 1) * d - 1
        if low or high:
            bounds = [self.const(0, term.dtype) if low else "", self.const((top + 1) * d - 1, term.dtype)]
            name = self.op("Clip", [name, *bounds[: 1 + high]])
        if d > 1:
            name = self.op("Div", [name, self.const(d, term.dtype)])
        n = len(term.lo)
        return _Term(name, term.dtype, _ints(np.zeros(n)), _ints(np.full(n, top)))


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
    def __init__(self, graph: dict, tensors: dict):
        self.graph, self.tensors, self.b = graph, tensors, _Builder()
        self.T = int(graph.get("T", 1))
        self.values: dict[str, _Value] = {}
        self.codes: list[tuple[str, _Term]] = []

    def input(self, spec: dict) -> _Value:
        b, channels = self.b, int(spec.get("channels", 3))
        x = b.op("Mul", ["images", b.const(255.0, TensorProto.FLOAT)])
        x = b.op("Clip", [b.op("Round", [x]), b.const(0.0, TensorProto.FLOAT), b.const(255.0, TensorProto.FLOAT)])
        q = b.op("Cast", [x], to=TensorProto.UINT8)
        if self.T > 1:
            q = b.op("Concat", [q] * self.T, axis=0)
        return _Value.of(_Term(q, TensorProto.UINT8, _ints(np.zeros(channels)), _ints(np.full(channels, 255))))

    def feeds(self, term: _Term, zero: int, lo: int, hi: int) -> list[tuple]:
        """How codes in ``[lo, hi]`` (``zero`` inside) reach ConvInteger: per conv input ``(name, type, zero
        point, digit factor, lowest, highest fed value)``."""
        b, i8 = self.b, TensorProto.INT8
        if -WINDOW <= lo and hi <= WINDOW:
            return [(b.cast(term, i8).name, i8, zero, 1, lo, hi)]
        if hi - lo <= 2 * WINDOW:  # one window wide: shift it in int8 (the wrap-around cancels: the result fits)
            off = lo + WINDOW
            wrapped = b.op("Cast", [term.name], to=i8) if term.dtype != i8 else term.name
            return [(b.op("Add", [wrapped, b.const((128 - off) % 256 - 128, i8)]), i8, zero - off, 1, -WINDOW,
                     hi - off)]
        if 0 <= lo and hi <= 255:
            return [(b.cast(term, TensorProto.UINT8).name, TensorProto.UINT8, zero, 1, lo, hi)]
        wide = b.cast(term, _wide([lo], [hi]))
        base = b.affine([(wide, _ints([1]))], _ints([-lo])) if lo else wide  # digits of x - lo, x - lo >= 0
        out, k = [], 0
        while DIGIT**k <= hi - lo:
            top = (hi - lo) // DIGIT**k < DIGIT
            digit = b.op("Div", [base.name, b.const(DIGIT**k, base.dtype)]) if k else base.name
            digit = b.op("Cast", [digit], to=i8)  # keeps the value mod 256
            if not top:
                digit = b.op("BitwiseAnd", [digit, b.const(DIGIT - 1, i8)])
            high = (hi - lo) // DIGIT**k if top else DIGIT - 1
            off = 0 if high <= WINDOW else WINDOW
            if off:
                digit = b.op("Add", [digit, b.const(-off, i8)])
            z = (zero - lo) // DIGIT**k if top else (zero - lo) // DIGIT**k % DIGIT
            out.append((digit, i8, z - off, DIGIT**k, -off, high - off))
            k += 1
        return out

    def conv(self, node: dict, x: _Value) -> _Value:
        b = self.b
        w = _tensor(self.tensors, node, "weight", (np.int8, np.int16)).astype(np.int64)
        out, groups = w.shape[0], int(node.get("groups", 1))
        bias = _tensor(self.tensors, node, "bias", (np.int64, np.int32), optional=True)
        bias = _ints(np.zeros(out) if bias is None else bias)
        zero = _tensor(self.tensors, node, "input_zero", (np.int64, np.int32), optional=True)
        zero = _ints(np.zeros(x.channels) if zero is None else zero)
        if w.ndim != 4 or w.shape[1] * groups != x.channels or out % groups or len(bias) != out:
            raise SpikedetError(f"conv {node['id']!r}: weight {list(w.shape)} with groups={groups} does not fit "
                                f"{x.channels} input channels and {len(bias)} biases")
        (sh, sw), (ph, pw) = node.get("stride", [1, 1]), node.get("padding", [0, 0])
        term = b.plain(x)
        # the accumulator's range: x - zero inside the image, 0 in the padding
        alo, ahi = _conv_range(w, groups, np.minimum(x.lo - zero, 0), np.maximum(x.hi - zero, 0))
        offset, pads, z = bias, [ph, pw, ph, pw], int(min(zero))
        if any(zc != z for zc in zero):  # pad with each channel's zero by hand, pad(x - zero) + zero; fold the rest
            t = b.cast(term, _wide(np.minimum(term.lo, zero), np.maximum(term.hi, zero)))
            shift = b.const(zero, t.dtype, True)
            padded = b.op("Pad", [b.op("Sub", [t.name, shift]), b.const([0, 0, ph, pw, 0, 0, ph, pw],
                                                                        TensorProto.INT64)])
            term, pads = _Term(b.op("Add", [padded, shift]), t.dtype, t.lo, t.hi), [0, 0, 0, 0]
            offset = offset - _conv_range(w, groups, zero - z, zero - z)[0]  # sum W * (zero[c] - z)
        # int16 weights: a low byte and a signed high byte
        parts = [(w, 1)] if -128 <= w.min() and w.max() <= 127 else [(w & 255, 1), (w >> 8, 256)]
        terms = []
        for fed, fed_type, fed_zero, factor, flo, fhi in self.feeds(term, z, min(*term.lo, z), max(*term.hi, z)):
            xl = _ints(np.full(x.channels, min(flo - fed_zero, 0)))
            xh = _ints(np.full(x.channels, max(fhi - fed_zero, 0)))
            for part, part_factor in parts:
                w_zero = 0 if part.min() >= 0 else 128  # MLAS' fast kernels take uint8 weights
                plo, phi = _conv_range(part, groups, xl, xh)
                if not _fits(plo, phi, TensorProto.INT32):
                    raise SpikedetError(f"conv {node['id']!r}: a partial sum can exceed int32")
                name = b.op("ConvInteger", [fed, b.const(part + w_zero, TensorProto.UINT8),
                                            b.const(fed_zero, fed_type), b.const(w_zero, TensorProto.UINT8)],
                            pads=pads, strides=[sh, sw], group=groups)
                terms.append((_Term(name, TensorProto.INT32, plo, phi), _ints(np.full(out, factor * part_factor))))
        return _Value(terms, offset, alo + bias, ahi + bias)

    def neuron(self, node: dict, x: _Value) -> _Term:
        b, c = self.b, x.channels
        m = _ints(_tensor(self.tensors, node, "multiplier", (np.int64, np.int32)))
        shift, levels, kind = int(_field(node, "shift")), int(_field(node, "levels")), _field(node, "kind")
        if len(m) != c or shift < 1:
            raise SpikedetError(f"neuron {node['id']!r}: {len(m)} multipliers for {c} channels, shift {shift}")
        if kind == "lut":
            lut = _tensor(self.tensors, node, "lut", (np.int16, np.int32, np.int64)).astype(np.int64)
            # q = lut[clip(J - lut_min, 0, K - 1)], J - lut_min = floor((I m + 2**(S-1) - lut_min 2**S) / 2**S)
            rounding = 2 ** (shift - 1) - int(_field(node, "lut_min")) * 2**shift
            index = self.requantize(x, m, rounding, shift, len(lut) - 1)
            table = b.const(lut, TensorProto.INT32)
            return _Term(b.op("Gather", [table, index.name]), TensorProto.INT32, _ints(np.full(c, lut.min())),
                         _ints(np.full(c, lut.max())))
        if kind != "threshold":
            raise SpikedetError(f"neuron {node['id']!r}: unknown kind {kind!r} (threshold, lut)")
        bits = int(_field(node, "fraction_bits"))
        rest = 2 ** (bits - 1) if node.get("rounding", "nearest") == "nearest" else 0
        if self.T == 1:  # q = clip(floor((floor((I m + 2**(S-1)) / 2**S) + R) / 2**F), 0, L): one division
            return self.requantize(x, m, 2 ** (shift - 1) + rest * 2**shift, shift + bits, levels)
        leak = node.get("leak") or {"multiplier": 0, "shift": 0}
        a, s = int(leak["multiplier"]), int(leak["shift"])
        plain = b.plain(x)
        steps = b.op("Split", [plain.name], outputs=self.T, axis=0, num_outputs=self.T)
        one, zero, codes, u = _ints([1]), _ints([0]), [], None
        for name in steps:
            step = _Term(name, plain.dtype, plain.lo, plain.hi)
            j = b.floor_div(b.affine([(step, m)], _ints([2 ** (shift - 1)])), shift)
            if u is not None:  # U[t] = floor((U[t-1] - q[t-1] 2**F) a / 2**s) + J[t]
                residue = b.affine([(u, _ints([a])), (codes[-1], _ints([-a * 2**bits]))], zero)
                j = b.affine([(b.floor_div(residue, s), one), (j, one)], zero)
            u = j
            codes.append(b.clip_div(b.affine([(u, one)], _ints([rest])), bits, levels))
        dtype = _wide(np.concatenate([q.lo for q in codes]), np.concatenate([q.hi for q in codes]))
        q = b.op("Concat", [b.cast(q, dtype).name for q in codes], axis=0)
        return _Term(q, dtype, _ints(np.zeros(c)), _ints(np.full(c, levels)))

    def requantize(self, x: _Value, m: np.ndarray, add: int, power: int, top: int) -> _Term:
        """``clip(floor((x * m + add) / 2**power), 0, top)``. Where the products need int64 but ``x`` fits
        int32, ``x`` is first clipped to the interval that decides the result (below it the result is 0, above
        it ``top``): the products then fit int32, two cheap ops instead of int64 arithmetic."""
        b, d, i32 = self.b, 2**power, TensorProto.INT32
        direct = [(t, c * m) for t, c in x.terms], x.offset * m + add  # the conv's bias and digit factors folded in
        raw = None if _affine_range(*direct)[2] == i32 or min(m) < 1 else b.affine(x.terms, _ints([0]))  # x - offset
        if raw is None or raw.dtype != i32:
            return b.clip_div(b.affine(*direct), power, top)
        # v = x m + add >= 0 from `first` on and <= (top + 1) d - 1 up to `last`; with m <= d the ends of that
        # interval give 0 and top themselves, else one step further out does (and the Clip below catches it)
        wider = int(max(m) > d)
        first = _ints([-(add // mc) - wider for mc in m]) - x.offset
        last = _ints([((top + 1) * d - 1 - add) // mc + wider for mc in m]) - x.offset
        name, lo, hi = raw.name, raw.lo, raw.hi
        if any(first > raw.lo):
            first = np.minimum(np.maximum(first, raw.lo), raw.hi)
            name, lo, hi = b.op("Max", [name, b.const(first, i32, True)]), np.maximum(lo, first), np.maximum(hi, first)
        if any(last < raw.hi):
            last = np.maximum(np.minimum(last, raw.hi), raw.lo)
            name, lo, hi = b.op("Min", [name, b.const(last, i32, True)]), np.minimum(lo, last), np.minimum(hi, last)
        return b.clip_div(b.affine([(_Term(name, i32, lo, hi), m)], x.offset * m + add), power, top)

    def narrow(self, term: _Term) -> _Term:
        """The term in the narrowest type that holds its values (moves are cheaper on fewer bytes)."""
        for dtype in (TensorProto.UINT8, TensorProto.INT8):
            if _fits(term.lo, term.hi, dtype):
                return self.b.cast(term, dtype)
        return term

    def maxpool(self, node: dict, x: _Value) -> _Term:
        b, t = self.b, self.narrow(self.b.plain(x))
        k, s, p = int(_field(node, "kernel")), int(node.get("stride", 1)), int(node.get("padding", 0))
        pooled = t
        if t.dtype not in (TensorProto.UINT8, TensorProto.INT8):  # no integer MaxPool kernel: float64 is exact
            if not _fits(t.lo, t.hi, TensorProto.INT64) or max(max(t.hi), -min(t.lo)) >= 2**53:
                raise SpikedetError(f"maxpool {node['id']!r}: values beyond 2**53")
            pooled = b.cast(t, TensorProto.DOUBLE)
        name = b.op("MaxPool", [pooled.name], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
        if pooled is not t:
            name = b.op("Cast", [name], to=t.dtype)
        return _Term(name, t.dtype, t.lo, t.hi)

    def upsample(self, node: dict, x: _Value) -> _Term:
        b, t, s = self.b, self.narrow(self.b.plain(x)), int(_field(node, "scale"))
        grown = b.op("Expand", [b.op("Unsqueeze", [t.name, b.const([3, 5], TensorProto.INT64)]),
                                b.const([1, 1, 1, s, 1, s], TensorProto.INT64)])
        shape = b.op("Mul", [b.op("Shape", [t.name]), b.const([1, 1, s, s], TensorProto.INT64)])
        return _Term(b.op("Reshape", [grown, shape]), t.dtype, t.lo, t.hi)

    def concat(self, node: dict, xs: list[_Value]) -> _Term:
        terms = [self.b.plain(x) for x in xs]
        lo, hi = np.concatenate([t.lo for t in terms]), np.concatenate([t.hi for t in terms])
        dtype = next((d for d in (TensorProto.UINT8, TensorProto.INT8) if _fits(lo, hi, d)), None) or _wide(lo, hi)
        return _Term(self.b.op("Concat", [self.b.cast(t, dtype).name for t in terms], axis=1), dtype, lo, hi)

    def time_sum(self, node: dict, x: _Value) -> _Value:
        if self.T == 1:
            return x
        t = self.b.plain(x)
        steps = self.b.op("Split", [t.name], outputs=self.T, axis=0, num_outputs=self.T)
        one = _ints([1])
        return _Value([(_Term(name, t.dtype, t.lo, t.hi), one) for name in steps], _ints([0]), t.lo * self.T,
                      t.hi * self.T)

    def run(self, codes: bool) -> list[tuple[str, _Term]]:
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
                value = _Value([tc for x in xs for tc in x.terms], sum(x.offset for x in xs),
                               sum(x.lo for x in xs), sum(x.hi for x in xs))
            elif op in ("conv", "time_sum"):
                value = getattr(self, op)(node, xs[0])
            elif op in ("neuron", "maxpool", "upsample"):
                value = _Value.of(getattr(self, op)(node, xs[0]))
                if op == "neuron":
                    self.codes.append((nid, value.terms[0][0]))
            elif op == "concat":
                value = _Value.of(self.concat(node, xs))
            else:
                raise SpikedetError(f"node {nid!r}: unknown op {op!r}")
            self.values[nid] = value
        outputs = []
        for out in _field(graph, "outputs"):
            if out.get("id") not in self.values:
                raise SpikedetError(f"output {out.get('name')!r} names an unknown node {out.get('id')!r}")
            self.b.scope = f"output:{out['name']}"
            t = self.b.plain(self.values[out["id"]])
            outputs.append((_field(out, "name"), self.b.cast(t, _wide(t.lo, t.hi))))
        for nid, q in self.codes if codes else []:
            small = _fits(q.lo, q.hi, TensorProto.INT16)
            outputs.append((f"codes:{nid}", self.b.cast(q, TensorProto.INT16 if small else TensorProto.INT32)))
        return outputs


def export_integer_onnx(graph: dict, tensors: dict[str, np.ndarray], path, *, codes: bool = False,
                        opset: int = 21) -> Path:
    """Write the integer graph as an ONNX model and return its path.

    Input ``images``: float32 ``[B, 3, H, W]`` in [0, 1] (any B, H, W). Outputs: every graph output by its name
    (int32 where its range allows, else int64), then with ``codes`` every neuron's codes as ``codes:<node id>``
    (int16), in graph order. The metadata key :data:`METADATA_KEY` describes them (JSON).
    """
    if opset < 18:
        raise SpikedetError(f"opset {opset} is too old: the integer model needs 18 or later (Split, BitwiseAnd)")
    exporter = _Exporter(graph, tensors)
    outputs = exporter.run(codes)
    b = exporter.b
    b.scope = "outputs"
    for name, term in outputs:
        b.nodes.append(helper.make_node("Identity", [term.name], [name], name=f"output/{name}"))
    onnx_graph = helper.make_graph(
        b.nodes, "spikedet_integer",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(name, term.dtype, [None, len(term.lo), None, None]) for name, term in outputs],
        b.inits)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="spikedet")
    by_name = {o["name"]: o for o in graph["outputs"]}

    def describe(name: str, term: _Term) -> dict:
        """An output in the metadata: real value = acc * scale[c] / divisor; or a neuron's codes."""
        if name not in by_name:
            return {"name": name, "dtype": _NUMPY[term.dtype].__name__, "codes": name.removeprefix("codes:")}
        out = by_name[name]
        scale = tensors.get(out.get("scale")) if isinstance(out.get("scale"), str) else None
        return {"name": name, "dtype": _NUMPY[term.dtype].__name__, "id": out["id"],
                "divisor": out.get("divisor", exporter.T), "scale": None if scale is None else np.ravel(scale).tolist()}

    meta = {"format": graph["format"], "version": graph["version"], "T": exporter.T, "input": "images",
            "outputs": [describe(name, term) for name, term in outputs], "head": graph.get("head")}
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
