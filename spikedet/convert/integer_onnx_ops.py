"""Building blocks of the integer ONNX export: exact value ranges, graph tensors, and an ONNX node builder.

Every tensor between ops holds integers whose range per channel is tracked here in Python integers (exact
interval arithmetic), and each op is emitted in a type that range proves exact:

- integer types where the values fit them (ONNX ``Div`` truncates: floor division makes the dividend
  non-negative first);
- ``float32`` where every value and every partial sum of the op is an integer of magnitude below
  :data:`FLOAT_EXACT` (2**24): each is then exactly representable, so any summation order gives the exact
  integer;
- ``float64`` for an affine map ``x * a + b`` with ``a``, ``b`` multiples of ``2**-P``, exact while every
  value in units of ``2**-P`` stays below :data:`DOUBLE_EXACT` (2**53).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from spikedet.errors import SpikedetError

FLOAT, DOUBLE = TensorProto.FLOAT, TensorProto.DOUBLE
INT8, UINT8, INT16, INT32, INT64 = (TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.INT32,
                                    TensorProto.INT64)
FLOAT_EXACT = 2**24  # float32 holds every integer of magnitude below this exactly
DOUBLE_EXACT = 2**53  # float64 likewise

RANGES = {INT8: (-(2**7), 2**7 - 1), UINT8: (0, 2**8 - 1), INT16: (-(2**15), 2**15 - 1),
          INT32: (-(2**31), 2**31 - 1), INT64: (-(2**63), 2**63 - 1), FLOAT: (-FLOAT_EXACT + 1, FLOAT_EXACT - 1)}
NUMPY = {INT8: np.int8, UINT8: np.uint8, INT16: np.int16, INT32: np.int32, INT64: np.int64, DOUBLE: np.float64,
         FLOAT: np.float32}


def ints(values) -> np.ndarray:
    """Exact integers (Python ints in an object array: range arithmetic never overflows)."""
    return np.array([int(v) for v in np.asarray(values).ravel()], dtype=object)


def fits(lo, hi, dtype: int) -> bool:
    low, high = RANGES[dtype]
    return low <= min(lo) and max(hi) <= high


def wide(lo, hi) -> int:
    """int32 where the range allows, else int64."""
    if fits(lo, hi, INT32):
        return INT32
    if fits(lo, hi, INT64):
        return INT64
    raise SpikedetError(f"an integer range [{min(lo)}, {max(hi)}] does not fit int64")


def magnitude(lo, hi) -> np.ndarray:
    """Per channel, the largest ``|x|`` for ``x`` in ``[lo, hi]``."""
    return np.maximum(np.abs(lo), np.abs(hi))


def conv_range(weight: np.ndarray, groups: int, xlo, xhi) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the range of ``sum W * x`` for ``x`` in ``[xlo[c], xhi[c]]`` (both include 0)."""
    out, per_group = weight.shape[:2]
    w = weight.astype(np.int64).reshape(out, per_group, -1)
    pos = ints(np.clip(w, 0, None).sum(2)).reshape(out, per_group)
    neg = ints(np.clip(w, None, 0).sum(2)).reshape(out, per_group)
    group_of = np.arange(out) // (out // groups)
    xl, xh = xlo.reshape(groups, per_group)[group_of], xhi.reshape(groups, per_group)[group_of]
    return (pos * xl + neg * xh).sum(1), (pos * xh + neg * xl).sum(1)


def conv_bound(weight: np.ndarray, groups: int, xmax) -> np.ndarray:
    """Per output channel, ``sum |W| * xmax[c]``: no partial sum of the conv over ``|x[c]| <= xmax[c]`` exceeds it."""
    w = np.abs(weight.astype(np.int64))
    return conv_range(w, groups, ints(np.zeros(len(xmax))), ints(xmax))[1]


@dataclass
class Term:
    """A tensor in the ONNX graph: name, element type, range of its values per channel."""

    name: str
    dtype: int
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class Value:
    """A graph tensor as ``sum_k coef_k[c] * term_k + offset[c]`` (per channel c); ``lo``/``hi`` its true range."""

    terms: list[tuple[Term, np.ndarray]]
    offset: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, term: Term, offset=None) -> Value:
        ones, zeros = ints(np.ones(len(term.lo))), ints(np.zeros(len(term.lo)))
        offset = zeros if offset is None else offset
        return cls([(term, ones)], offset, term.lo + offset, term.hi + offset)

    @property
    def channels(self) -> int:
        return len(self.lo)

    @property
    def single(self) -> Term | None:
        """The one term, if the value is ``term + offset``."""
        (term, coef), = self.terms if len(self.terms) == 1 else [(None, None)]
        return term if term is not None and all(c == 1 for c in coef) else None


def affine_range(terms, offset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Range of ``sum coef * term + offset`` and every partial sum's largest magnitude (per channel)."""
    lo, hi, partial = offset, offset, magnitude(offset, offset)
    for term, coef in terms:
        plo, phi = np.minimum(coef * term.lo, coef * term.hi), np.maximum(coef * term.lo, coef * term.hi)
        lo, hi = lo + plo, hi + phi
        partial = np.maximum(np.maximum(partial, magnitude(plo, phi)), magnitude(lo, hi))
    return lo, hi, partial


class Builder:
    """Collects ONNX nodes and initializers; names every output after the graph node being built."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self.scope, self._count, self._consts, self._casts, self._tables = "graph", 0, {}, {}, {}

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs) -> str | list[str]:
        self._count += 1
        names = [f"{self.scope}/{op_type}_{self._count}" + (f"_{i}" if outputs > 1 else "") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=names[0], **attrs))
        return names if outputs > 1 else names[0]

    def const(self, array, dtype: int, channel_axis: bool = False) -> str:
        """A constant; with ``channel_axis``, ``[1, C, 1, 1]`` (a scalar if all its values are equal)."""
        values = np.asarray(array)
        if dtype in RANGES:  # the exporter proves every constant fits; this guards that proof
            assert fits([values.min()], [values.max()], dtype), (values.min(), values.max(), dtype)
            values = values.astype(np.int64)
        if channel_axis:
            values = values.ravel()
            values = values[0] if (values == values[0]).all() else values.reshape(1, -1, 1, 1)
        data = np.asarray(values).astype(NUMPY[dtype])
        key = (dtype, data.shape, data.tobytes())
        if key not in self._consts:
            self._consts[key] = f"const/{len(self._consts)}"
            self.inits.append(numpy_helper.from_array(data, self._consts[key]))
        return self._consts[key]

    def cast(self, term: Term, dtype: int) -> Term:
        """``term`` as ``dtype`` (values must fit; a cast made once is reused)."""
        if term.dtype == dtype:
            return term
        assert dtype == DOUBLE or fits(term.lo, term.hi, dtype), (term.name, dtype)
        key = (term.name, dtype)
        if key in self._casts:
            return self._casts[key]
        if term.name in self._tables and dtype == INT8:  # a lookup read as bytes: look up in a table of bytes
            flat, shape, table = self._tables[term.name]  # (entries no channel reaches may be anything)
            table = np.clip(table, min(term.lo), max(term.hi))
            found = self.op("GatherElements", [self.const(table, dtype), flat], axis=0)
            name = self.op("Reshape", [found, shape])
        else:
            name = self.op("Cast", [term.name], to=dtype)
        self._casts[key] = Term(name, dtype, term.lo, term.hi)
        return self._casts[key]

    def made(self, term: Term) -> Term:
        """``term``, or the one-byte copy of it that a reader already made (a float32 lookup that only int8 readers
        use is never computed: reading the copy keeps it so)."""
        return next((self._casts[(term.name, d)] for d in (INT8, UINT8) if (term.name, d) in self._casts), term)

    def integral(self, term: Term) -> Term:
        """The term in an integer type: a float term as the narrowest of uint8, int8, int32 that holds it."""
        if term.dtype != FLOAT:
            return term
        return self.cast(term, next(d for d in (UINT8, INT8, INT32) if fits(term.lo, term.hi, d)))

    def affine(self, terms, offset, allow_float: bool = False) -> Term:
        """``sum coef * term + offset`` in the narrowest integer type every partial sum fits, or (with
        ``allow_float``, when a term is float32 already) in float32 where that is exact."""
        lo, hi, partial = affine_range(terms, offset)
        dtype = wide(-partial, partial)
        if allow_float and any(t.dtype == FLOAT for t, _ in terms) and max(partial) < FLOAT_EXACT:
            dtype = FLOAT
        total = None
        for term, coef in terms:
            name = self.cast(term, dtype).name
            if any(c != 1 for c in coef):
                name = self.op("Mul", [name, self.const(coef, dtype, True)])
            total = name if total is None else self.op("Add", [total, name])
        if any(o != 0 for o in offset):
            total = self.op("Add", [total, self.const(offset, dtype, True)])
        return Term(total, dtype, lo, hi)

    def plain(self, value: Value, allow_float: bool = False) -> Term:
        """The value as one stored tensor (float32 only with ``allow_float``)."""
        term = value.single
        if term is not None and all(o == 0 for o in value.offset) and (allow_float or term.dtype != FLOAT):
            return term
        return self.affine(value.terms, value.offset, allow_float)

    def floor_div(self, term: Term, power: int) -> Term:
        """``floor(term / 2**power)`` of an integer term (ONNX Div truncates: a negative dividend is shifted up
        first)."""
        d, lo, hi = 2**power, term.lo, term.hi
        if power == 0:
            return term
        lift = max(0, -(min(lo) // d))
        shifted = term if lift == 0 else self.affine([(term, ints([1]))], ints([lift * d]))
        name = self.op("Div", [shifted.name, self.const(d, shifted.dtype)])
        if lift:
            name = self.op("Sub", [name, self.const(lift, shifted.dtype)])
        return Term(name, shifted.dtype, ints([v // d for v in lo]), ints([v // d for v in hi]))

    def clip_div(self, term: Term, power: int, top: int) -> Term:
        """``clip(floor(term / 2**power), 0, top)`` of an integer term: clipped to ``[0, (top+1) * 2**power - 1]``
        first, so Div sees no negative dividend."""
        d, name = 2**power, term.name
        low, high = min(term.lo) < 0, max(term.hi) > (top + 1) * d - 1
        if low or high:
            bounds = [self.const(0, term.dtype) if low else "", self.const((top + 1) * d - 1, term.dtype)]
            name = self.op("Clip", [name, *bounds[: 1 + high]])
        if d > 1:
            name = self.op("Div", [name, self.const(d, term.dtype)])
        n = len(term.lo)
        return Term(name, term.dtype, ints(np.zeros(n)), ints(np.full(n, top)))

    def lookup(self, index: Term, table: np.ndarray, dtype: int) -> str:
        """``table[index]`` elementwise (``GatherElements`` on the flattened index: ``Gather`` copies one
        element at a time, several times slower on ONNX Runtime's CPU provider). A cast of the result to int8
        looks up in an int8 table instead (one pass, and the float32 lookup is dropped if nothing reads it)."""
        flat, shape = self.op("Reshape", [index.name, self.const([-1], INT64)]), self.op("Shape", [index.name])
        found = self.op("GatherElements", [self.const(table, dtype), flat], axis=0)
        name = self.op("Reshape", [found, shape])
        self._tables[name] = (flat, shape, table)
        return name

    def name_outputs(self, outputs: list[tuple[str, Term]]) -> None:
        """Give each output its name: the tensor a node makes is renamed (an ``Identity`` would copy it: 60 trains
        cost 5 ms a run at 640x480 on ONNX Runtime); one that is not a node's own, or is two outputs, gets an
        ``Identity``."""
        made = {o for node in self.nodes for o in node.output}
        renamed: dict[str, str] = {}
        for name, term in outputs:
            if term.name in made and term.name not in renamed:
                renamed[term.name] = name
            else:
                self.nodes.append(helper.make_node("Identity", [term.name], [name], name=f"output/{name}"))
        for node in self.nodes:
            for field in (node.input, node.output):
                for i, value in enumerate(field):
                    if value in renamed:
                        field[i] = renamed[value]

    def used(self, outputs: list[str]) -> list:
        """The nodes that ``outputs`` depend on, in order (a lookup only ever read in another type is dropped)."""
        needed, kept = set(outputs), []
        for node in reversed(self.nodes):
            if needed.intersection(node.output):
                kept.append(node)
                needed.update(node.input)
        return kept[::-1]


#: most entries of a neuron's table when one scalar Clip serves all its channels (else it clips per channel)
TABLE_LIMIT = 1 << 18


@dataclass
class TablePlan:
    """How a neuron's ``table[clip(floor((x * m + add) / 2**P), 0, top)]`` runs: clip ``x`` (one interval for
    all channels, or one per channel; a side is ``None`` when nothing needs clipping there), then in float64
    ``x * scale + bias`` (``m / 2**P`` and ``add / 2**P + k``), truncated to int32, indexes ``table``
    (entry ``j`` is the neuron's entry ``clip(j - k, 0, top)``)."""

    clip: tuple
    per_channel: bool
    lo: np.ndarray  # range of x after the clip, per channel
    hi: np.ndarray
    scale: np.ndarray
    bias: np.ndarray
    table: np.ndarray
    codes_lo: np.ndarray  # range of the codes, per channel
    codes_hi: np.ndarray


def _saturation(m: int, add: int, d: int, top: int) -> tuple[int, int] | None:
    """An interval of x outside which ``clip(floor((x m + add) / d), 0, top)`` no longer changes (None: it is
    constant). For m > 0: ``x <= floor((d - 1 - add) / m)`` gives 0, ``x >= ceil((top d - add) / m)`` gives top."""
    if m == 0:
        return None
    zero_end, top_end = (d - 1 - add) // m, -((add - top * d) // m)  # floor and ceil divisions
    if m < 0:
        zero_end, top_end = -((add - d + 1) // m), (top * d - add) // m
    return min(zero_end, top_end), max(zero_end, top_end)


def _plan(lo, hi, m, add, d: int, table: np.ndarray, clip: tuple, per_channel: bool) -> TablePlan | None:
    """The plan for ``x`` clipped to ``clip``; None where float64 cannot hold it exactly or the table is too big."""
    low = np.full(len(lo), -np.inf, object) if clip[0] is None else np.broadcast_to(clip[0], len(lo))
    high = np.full(len(lo), np.inf, object) if clip[1] is None else np.broadcast_to(clip[1], len(lo))
    clo = ints([min(max(v, a), b) for v, a, b in zip(lo, low, high)])
    chi = ints([min(max(v, a), b) for v, a, b in zip(hi, low, high)])
    ends = [(xl * mc + ac, xh * mc + ac) for xl, xh, mc, ac in zip(clo, chi, m, add)]
    g_lo = ints([min(a, b) // d for a, b in ends])
    g_hi = ints([max(a, b) // d for a, b in ends])
    k = -min(g_lo)
    size = int(max(g_hi)) + k + 1
    products = max(max(abs(xl * mc), abs(xh * mc)) for xl, xh, mc in zip(clo, chi, m))
    sums = max(max(abs(a + k * d), abs(b + k * d)) for a, b in ends)
    if size > TABLE_LIMIT or max(products, sums) >= DOUBLE_EXACT:
        return None
    top = len(table) - 1
    full = np.asarray(table, np.int64)[np.clip(np.arange(size) - k, 0, top)]
    codes = [full[a + k: b + k + 1] for a, b in zip(g_lo, g_hi)]
    return TablePlan(clip, per_channel, clo, chi, np.array([mc / d for mc in m]),
                     np.array([(ac + k * d) / d for ac in add]), full, ints([c.min() for c in codes]),
                     ints([c.max() for c in codes]))


def table_plan(lo, hi, m, add, power: int, table: np.ndarray) -> TablePlan | None:
    """How to look up ``table[clip(floor((x * m[c] + add[c]) / 2**power), 0, len(table) - 1)]`` for integers
    ``x`` in ``[lo[c], hi[c]]`` exactly in float64: one Clip for all channels if its table stays small, else
    a clip per channel; None if even that leaves products beyond 2**53."""
    d, top = 2**power, len(table) - 1
    sat = [_saturation(int(mc), int(ac), d, top) for mc, ac in zip(m, add)]
    known = [s for s in sat if s is not None] or [(0, 0)]
    first, last = min(s[0] for s in known), max(s[1] for s in known)
    first, last = min(first, max(hi)), max(last, min(lo))  # within the values (every channel saturates beyond)
    clip = (first if first > min(lo) else None, last if last < max(hi) else None)
    plan = _plan(lo, hi, m, add, d, table, clip, False)
    if plan is not None:
        return plan
    # per channel: [lo, hi] intersected with the channel's own interval (still a valid clip where they miss)
    own = [(lc, hc) if s is None else (min(max(s[0], lc), hc), max(min(s[1], hc), lc)) for s, lc, hc in
           zip(sat, lo, hi)]
    return _plan(lo, hi, m, add, d, table, (ints([o[0] for o in own]), ints([o[1] for o in own])), True)
