"""Energy models: what one image's operation and spike counts cost, under three named sets of assumptions.

All three read the same counts (:mod:`spikedet.measure.energy` records them from the spikes actually fired)
and compare the SNN with the same network run as an ANN; each states the baseline it is measured against.

``convention`` — the field's usual compute-only estimate (SpikeYOLO, the IBRA-LIF paper): the first conv,
  on the real image, costs ``MACs x E_MAC``; every conv on spikes ``ACs x E_AC`` with
  ``ACs = MACs x spikes per input element``; the ANN ``MACs x E_MAC``, float32 throughout
  (``E_MAC = 4.6 pJ``: a 32-bit float multiply, 3.7 pJ, plus add, 0.9 pJ; ``E_AC = 0.9 pJ``). Memory and
  neuron updates are not counted. Kept unchanged so results stay comparable with papers.
``integer`` — the arithmetic of an integer deployment: int8 weights, 32-bit integer accumulators. An AC is a
  32-bit integer add (0.1 pJ); a MAC of the first conv an 8-bit multiply (0.2 pJ) plus a 32-bit add. Baseline:
  the same network as an **int8 ANN** (int8 weights and activations, 32-bit accumulation), the standard
  deployment an SNN with graded codes competes with.
``memory`` — the integer arithmetic plus memory traffic and neuron updates, following the analytical model of
  Lemaire et al. (ICONIP 2022, "An analytical estimation of spiking neural networks energy efficiency"): no
  reuse, every operation reads its operands from on-chip SRAM. Per synaptic operation (AC) the SNN reads a
  weight and reads and writes a membrane potential; each spike is read once per consuming conv as an event
  word; each neuron update reads and writes its potential, costs one 32-bit add and writes one event per
  spike it fires; the first conv reads a weight and an image byte per MAC and writes its potentials. The
  ANN reads a weight and an input activation per MAC and writes each output activation once. An access costs
  Horowitz's 45 nm SRAM figure for a buffer of the size holding the data (8 KB: 10 pJ, 32 KB: 20 pJ,
  1 MB: 100 pJ per 64-bit access, linear in between, as in Lemaire's model; larger buffers are charged as
  1 MB: everything on chip, DRAM not counted).

Every constant is a field of :class:`EnergyConstants` (a setting of the commands), reported with its source.

    >>> c = EnergyConstants()
    >>> round(c.access_pj(16 * 1024, bits=64), 3)      # a 16 KB buffer: between 8 KB (10 pJ) and 32 KB (20 pJ)
    13.333
    >>> c.access_pj(4 * 2**20, bits=8) == 100 / 8       # above 1 MB: charged as 1 MB, per byte
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

HOROWITZ = "Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm, 0.9 V"
LEMAIRE = ("Lemaire et al., 'An analytical estimation of spiking neural networks energy efficiency', "
           "ICONIP 2022 (arXiv 2210.13107)")
ASSUMED = "spikedet's assumption"

#: Documentation of every constant: (unit, source, meaning). The CLI and the JSON read it from here.
CONSTANTS: dict[str, tuple[str, str, str]] = {
    "e_mac_pj": ("pJ", HOROWITZ, "float32 multiply-add (3.7 + 0.9 pJ): a MAC in the convention model"),
    "e_ac_pj": ("pJ", HOROWITZ, "float32 add: an AC in the convention model"),
    "e_int_add_pj": ("pJ", HOROWITZ, "32-bit integer add: an AC, an accumulation, a neuron update"),
    "e_int8_mul_pj": ("pJ", HOROWITZ, "8-bit integer multiply: with an add, an int8 MAC"),
    "e_sram_8kb_pj": ("pJ", HOROWITZ, "64-bit access to an 8 KB SRAM"),
    "e_sram_32kb_pj": ("pJ", HOROWITZ, "64-bit access to a 32 KB SRAM"),
    "e_sram_1mb_pj": ("pJ", HOROWITZ, "64-bit access to a 1 MB SRAM (also charged for larger buffers)"),
    "weight_bits": ("bits", ASSUMED, "stored width of a weight (int8 deployment)"),
    "potential_bits": ("bits", ASSUMED, "stored width of a membrane potential (32-bit accumulator)"),
    "activation_bits": ("bits", ASSUMED, "stored width of an ANN activation (int8) and of an image byte"),
    "event_bits": ("bits", LEMAIRE, "width of one spike event (address and sign) in the event buffer"),
    "spike_buffer_kb": ("KB", LEMAIRE, "size of the event buffer spikes are read from and written to"),
}


@dataclass(frozen=True)
class EnergyConstants:
    """Every constant of the energy models (see the module docstring; :data:`CONSTANTS` gives units and sources)."""

    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9
    e_int_add_pj: float = 0.1
    e_int8_mul_pj: float = 0.2
    e_sram_8kb_pj: float = 10.0
    e_sram_32kb_pj: float = 20.0
    e_sram_1mb_pj: float = 100.0
    weight_bits: int = 8
    potential_bits: int = 32
    activation_bits: int = 8
    event_bits: int = 32
    spike_buffer_kb: float = 32.0
    process: str = "45 nm"
    source: str = "Horowitz, ISSCC 2014"

    def __post_init__(self):
        for name in CONSTANTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
            if name.endswith("_bits") and (value != int(value) or value < 1):
                raise ValueError(f"{name} must be a whole number of bits >= 1, got {value!r}")
        if not self.e_sram_8kb_pj <= self.e_sram_32kb_pj <= self.e_sram_1mb_pj:
            raise ValueError("SRAM access energies must grow with the size: e_sram_8kb_pj <= e_sram_32kb_pj <= "
                             f"e_sram_1mb_pj, got {self.e_sram_8kb_pj}, {self.e_sram_32kb_pj}, {self.e_sram_1mb_pj}")

    def as_dict(self) -> dict:
        """The convention model's constants as before (``e_mac_pj``, ``e_ac_pj``, ``process``, ``source``)."""
        return {"e_mac_pj": self.e_mac_pj, "e_ac_pj": self.e_ac_pj, "process": self.process, "source": self.source}

    def cited(self, names: tuple[str, ...]) -> dict:
        """``{name: {"value", "unit", "source", "meaning"}}`` for the named constants."""
        out = {}
        for name in names:
            unit, source, meaning = CONSTANTS[name]
            out[name] = {"value": getattr(self, name), "unit": unit, "source": source, "meaning": meaning}
        return out

    def access_pj(self, capacity_bytes: float, bits: float) -> float:
        """Energy of moving ``bits`` to or from an SRAM of ``capacity_bytes``: the 64-bit access energy,
        linear in the size between Horowitz's points (0, 8 KB, 32 KB, 1 MB; flat above), per bit."""
        points = ((0.0, 0.0), (8 * 1024.0, self.e_sram_8kb_pj), (32 * 1024.0, self.e_sram_32kb_pj),
                  (1024 * 1024.0, self.e_sram_1mb_pj))
        size = min(max(float(capacity_bytes), 0.0), points[-1][0])
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if size <= x1:
                per_word = y0 + (y1 - y0) * (size - x0) / (x1 - x0)
                return per_word * bits / 64.0
        return points[-1][1] * bits / 64.0  # pragma: no cover - size is clamped above

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every constant field (all but the ``process`` and ``source`` labels): each must be in :data:`CONSTANTS`."""
        return tuple(f.name for f in fields(cls) if f.name not in ("process", "source"))


# -- the counts a model is charged for --------------------------------------------------------------

@dataclass(frozen=True)
class ConvCounts:
    """What one conv did for one image (the recorder's counts; ``T`` timesteps included in the SNN's)."""

    real_input: bool  # the first conv: a real-valued image, so MACs
    macs: float  # dense MACs, every timestep
    acs: float  # synaptic operations from spikes (0 for a real input)
    spikes: float  # input spikes read
    input_elements: float  # per timestep x T
    output_elements: float  # potentials written per timestep x T
    weights: float  # weight count of the (merged) conv
    ann_macs: float  # the ANN's MACs (cheapest trained form, one timestep)
    ann_input_elements: float  # one timestep
    ann_output_elements: float  # one timestep


@dataclass(frozen=True)
class NeuronCounts:
    """What one neuron population did for one image."""

    updates: float  # neurons x timesteps
    spikes: float  # spikes fired
    elements_per_step: float  # neurons (one timestep): the size of its potential buffer


# -- the models -----------------------------------------------------------------------------------

MODELS = ("convention", "integer", "memory")
#: Every model in a report: the three above, plus SpikeYOLO's spreadsheet convention (for comparison with
#: SpikeYOLO's published figures; :mod:`spikedet.measure.spikeyolo_energy`).
REPORTED = (*MODELS, "spikeyolo")

BASELINES = {
    "convention": "the same network as a float32 ANN, compute only",
    "integer": "the same network as an int8 ANN (int8 weights and activations, 32-bit accumulation), compute only",
    "memory": "the same network as an int8 ANN, compute plus SRAM traffic (no reuse) and neuron updates",
}

DESCRIPTIONS = {
    "convention": "the field's usual compute-only estimate (float32, 45 nm)",
    "integer": "integer arithmetic against an int8 network",
    "memory": "integer arithmetic with memory traffic and neuron updates",
}

ASSUMPTIONS = {
    "convention": [
        "only arithmetic is counted: memory access, data movement and neuron updates are not",
        "first conv (real image): MACs x E_MAC; convs on spikes: ACs = MACs x mean spikes per input element, x E_AC",
        "ANN: the trained network in its cheapest form, every operation a float32 MAC",
    ],
    "integer": [
        "int8 weights and 32-bit integer accumulators (the integer deployment model)",
        "an AC is one 32-bit integer add; a first-conv MAC an 8-bit multiply plus a 32-bit add",
        "ANN: int8 weights and activations, each MAC an 8-bit multiply plus a 32-bit add",
        "memory access and neuron updates are not counted",
    ],
    "memory": [
        "Lemaire et al.'s no-reuse model: every operation reads its operands from on-chip SRAM",
        "per AC the SNN reads a weight and reads and writes a 32-bit membrane potential",
        "each spike is read once per consuming conv as one event word from the event buffer",
        "each neuron update reads and writes its potential, costs a 32-bit add and writes one event per spike",
        "the first conv reads a weight and an image byte per MAC and writes its potentials",
        "the ANN reads a weight and an input activation per MAC and writes each output activation once; its "
        "activation functions are not charged",
        "an access costs the 64-bit SRAM energy of a buffer the size of the data (weights of the layer, its "
        "potentials or activations, the event buffer), linear between 8 KB, 32 KB and 1 MB, flat above: DRAM "
        "is not counted",
    ],
}

MODEL_CONSTANTS = {
    "convention": ("e_mac_pj", "e_ac_pj"),
    "integer": ("e_int_add_pj", "e_int8_mul_pj"),
    "memory": ("e_int_add_pj", "e_int8_mul_pj", "e_sram_8kb_pj", "e_sram_32kb_pj", "e_sram_1mb_pj", "weight_bits",
               "potential_bits", "activation_bits", "event_bits", "spike_buffer_kb"),
}


def conv_pj(model: str, c: ConvCounts, k: EnergyConstants) -> tuple[float, float]:
    """``(SNN pJ, ANN pJ)`` of one conv under ``model``."""
    if model == "convention":
        snn = c.macs * k.e_mac_pj if c.real_input else c.acs * k.e_ac_pj
        return snn, c.ann_macs * k.e_mac_pj
    int_mac = k.e_int8_mul_pj + k.e_int_add_pj
    snn = c.macs * int_mac if c.real_input else c.acs * k.e_int_add_pj
    ann = c.ann_macs * int_mac
    if model == "integer":
        return snn, ann
    if model != "memory":
        raise ValueError(f"unknown energy model {model!r}; choose one of {', '.join(MODELS)}")
    weights = k.access_pj(c.weights * k.weight_bits / 8, k.weight_bits)
    # buffers hold one timestep: the ANN's element counts are the SNN's per timestep
    potential = k.access_pj(c.ann_output_elements * k.potential_bits / 8, k.potential_bits)
    if c.real_input:
        image = k.access_pj(c.ann_input_elements * k.activation_bits / 8, k.activation_bits)
        snn += c.macs * (weights + image) + c.output_elements * potential
    else:
        event = k.access_pj(k.spike_buffer_kb * 1024, k.event_bits)
        snn += c.acs * (weights + 2 * potential) + c.spikes * event
    activation_in = k.access_pj(c.ann_input_elements * k.activation_bits / 8, k.activation_bits)
    activation_out = k.access_pj(c.ann_output_elements * k.activation_bits / 8, k.activation_bits)
    ann += c.ann_macs * (weights + activation_in) + c.ann_output_elements * activation_out
    return snn, ann


def neuron_pj(model: str, n: NeuronCounts, k: EnergyConstants) -> float:
    """The SNN's cost of one neuron population's updates (only the memory model counts them)."""
    if model != "memory":
        return 0.0
    potential = k.access_pj(n.elements_per_step * k.potential_bits / 8, k.potential_bits)
    event = k.access_pj(k.spike_buffer_kb * 1024, k.event_bits)
    return n.updates * (k.e_int_add_pj + 2 * potential) + n.spikes * event
