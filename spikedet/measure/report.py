"""One image's energy report: per-layer counts, the three energy models, and the figures a reader needs.

The top-level ``snn_mJ``, ``ann_mJ`` and ``efficiency`` are the ``convention`` model (the field's
compute-only estimate) so existing readers and comparisons with papers keep working; ``energy_models`` holds
all three models (:mod:`spikedet.measure.costs`), each with its baseline, constants and assumptions.

Plain figures next to them: ``spikes_per_element`` (ACs / MACs over the convs that receive spikes: how many
additions replace one multiply-add), ``activation_sparsity`` (the share of those convs' input elements that
send no spike), ``effective_macs`` (multiply-accumulates actually performed: the convs on the real image)
and ``effective_acs``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from spikedet.measure import costs
from spikedet.measure.costs import EnergyConstants
from spikedet.measure.spikeyolo_energy import LayerCounts, spikeyolo_energy

CAVEAT = (
    "Top-level figures: the field's compute-only convention (float32 MAC 4.6 pJ vs AC 0.9 pJ, 45 nm, Horowitz "
    "2014): memory access, data movement and neuron updates are not counted; ACs = MACs x mean spikes per input "
    "element. energy_models adds an int8 baseline and a memory-aware estimate."
)


@dataclass
class LayerEnergy:
    """One conv for one image. ``energy_mJ`` is the convention model's; ``energy_models`` has all three."""

    name: str
    input: str
    macs: float
    spikes: float
    input_elements: float
    firing_rate: float  # spikes per input element
    acs: float
    energy_mJ: float
    ann_macs: float
    encoding: str
    sparsity: float | None = None  # share of input elements that send no spike (None: real or summed input)
    energy_models: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class NeuronActivity:
    """One neuron population for one image: updates (neurons x timesteps) and the spikes it fired."""

    name: str
    updates: float
    spikes: float
    energy_models: dict[str, float] = field(default_factory=dict)  # SNN mJ per model (neuron updates and writes)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelEnergy:
    """One energy model's verdict for one image."""

    name: str
    snn_mJ: float
    ann_mJ: float
    baseline: str
    description: str
    constants: dict
    assumptions: list[str]
    details: dict = field(default_factory=dict)  # model-specific figures (e.g. SpikeYOLO's first-layer rule)

    @property
    def efficiency(self) -> float:
        return self.ann_mJ / self.snn_mJ if self.snn_mJ > 0 else float("inf")

    def to_dict(self) -> dict:
        return {"snn_mJ": self.snn_mJ, "ann_mJ": self.ann_mJ, "efficiency": _finite(self.efficiency),
                "baseline": self.baseline, "description": self.description, "constants": self.constants,
                "assumptions": list(self.assumptions), **self.details}


@dataclass
class EnergyReport:
    """The energy estimate of one image. :meth:`to_dict` is what the service and ``--json`` return."""

    image: str | None
    snn_mJ: float
    ann_mJ: float
    ann_merged_mJ: float
    efficiency: float
    macs: float
    acs: float
    spikes: float
    counting: str
    constants: EnergyConstants
    layers: list[LayerEnergy]
    caveat: str = CAVEAT
    energy_models: dict[str, ModelEnergy] = field(default_factory=dict)
    neurons: list[NeuronActivity] = field(default_factory=list)
    effective_macs: float = 0.0
    spiking_macs: float = 0.0
    spikes_per_element: float = 0.0
    activation_sparsity: float = 0.0

    def to_dict(self, layers: bool = True) -> dict:
        out = {
            "image": self.image,
            "snn_mJ": self.snn_mJ,
            "ann_mJ": self.ann_mJ,
            "ann_merged_mJ": self.ann_merged_mJ,
            "efficiency": _finite(self.efficiency),
            "macs": self.macs,
            "acs": self.acs,
            "spikes": self.spikes,
            "effective_macs": self.effective_macs,
            "effective_acs": self.acs,
            "spiking_macs": self.spiking_macs,
            "spikes_per_element": self.spikes_per_element,
            "activation_sparsity": self.activation_sparsity,
            "counting": self.counting,
            "constants": self.constants.as_dict(),
            "caveat": self.caveat,
            "energy_models": {name: m.to_dict() for name, m in self.energy_models.items()},
        }
        if layers:
            out["layers"] = [layer.as_dict() for layer in self.layers]
            out["neurons"] = [n.as_dict() for n in self.neurons]
        return out

    def summary(self) -> str:
        return (
            f"SNN {self.snn_mJ:.4f} mJ vs ANN {self.ann_mJ:.4f} mJ (merged ANN {self.ann_merged_mJ:.4f} mJ): "
            f"{self.efficiency:.2f}x; {self.macs / 1e9:.2f} GMACs, {self.acs / 1e9:.2f} GACs"
        )

    def verdict(self, lead: str = "convention") -> str:
        """The efficiencies in words, ``lead`` model first, each naming its baseline, e.g. "2.60x less energy
        under the field's usual compute-only estimate (float32, 45 nm); 1.79x against an int8 network; ..."."""
        order = [lead] + [m for m in costs.MODELS if m != lead]
        parts = []
        for i, name in enumerate(m for m in order if m in self.energy_models):
            model = self.energy_models[name]
            parts.append(f"{ratio_words(model.efficiency, first=i == 0)} {_phrase(name)}")
        return "; ".join(parts)

    def describe(self, lead: str = "convention") -> list[str]:
        """The energy in lines a non-specialist reads right: ``lead`` model first, every efficiency with its
        baseline, then where it comes from (what ``spikedet demo`` prints)."""
        first = self.energy_models[lead]
        lines = [f"SNN {_mj(first.snn_mJ)} vs ANN {_mj(first.ann_mJ)} per image: {ratio_words(first.efficiency, True)} "
                 f"{_phrase(lead)}"]
        for name in (m for m in costs.MODELS if m != lead and m in self.energy_models):
            m = self.energy_models[name]
            lines.append(f"  {ratio_words(m.efficiency, True)} {_phrase(name)}: SNN {_mj(m.snn_mJ)} vs {_mj(m.ann_mJ)}")
        lines.append(f"  {self.operations()}")
        return lines

    def operations(self) -> str:
        """Where the efficiency comes from, in one sentence a non-specialist reads right."""
        ann = sum(l.ann_macs for l in self.layers)
        more = self.acs + self.effective_macs > ann
        why = (": the compute-only savings come from an addition costing less than a multiply-add, not from doing "
               "fewer operations") if more else ""
        return (f"{self.spikes_per_element:.2f} spikes per input element of the spiking convs "
                f"({100 * self.activation_sparsity:.0f}% of inputs silent): {self.acs / 1e9:.2f} G additions (ACs) "
                f"and {self.effective_macs / 1e9:.2f} G multiply-adds (MACs, the first conv), {'more' if more else 'fewer'} "
                f"operations than the ANN's {ann / 1e9:.2f} G MACs{why}")

    def table(self) -> str:
        wn = max([40] + [len(l.name) for l in self.layers])
        wi = max([18] + [len(l.input) for l in self.layers])
        lines = [f"{'layer':<{wn}} {'input':<{wi}} {'MACs':>14} {'fr':>7} {'ACs':>14} {'mJ':>10}"]
        for l in self.layers:
            lines.append(
                f"{l.name:<{wn}} {l.input:<{wi}} {l.macs:>14,.0f} {l.firing_rate:>7.3f} {l.acs:>14,.0f} {l.energy_mJ:>10.5f}"
            )
        return "\n".join(lines)


def _mj(x: float) -> str:
    return f"{x:.3f} mJ" if x >= 0.01 else f"{x:.2g} mJ"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no infinity


def ratio_words(efficiency: float, first: bool) -> str:
    """An efficiency said the way it goes: "2.60x less energy" / "14.09x more" (``first``: with "energy")."""
    if not math.isfinite(efficiency):
        return "no energy spent" if first else "no energy"
    if efficiency >= 1:
        return f"{efficiency:.2f}x less energy" if first else f"{efficiency:.2f}x less"
    return f"{1 / efficiency:.2f}x more energy" if first else f"{1 / efficiency:.2f}x more"


def _phrase(model: str) -> str:
    return {"convention": "under the field's usual compute-only estimate (float32, 45 nm)",
            "integer": "against an int8 network (integer arithmetic)",
            "memory": "with memory traffic and neuron updates (int8 network, on-chip SRAM)",
            "spikeyolo": "under SpikeYOLO's spreadsheet convention (merged float32 network)"}.get(model, f"({model})")


def _spikeyolo_sheet(records: list, i: int, constants: EnergyConstants) -> ModelEnergy:
    """SpikeYOLO's spreadsheet convention (:mod:`spikedet.measure.spikeyolo_energy`) as a named model."""
    sheet = spikeyolo_energy(
        [LayerCounts(r.kind, r.macs[i], r.merged_macs[i], r.code_sums[i] if r.code_sums else 0.0, r.elements[i])
         for r in records], constants.e_mac_pj, constants.e_ac_pj)
    return ModelEnergy(
        "spikeyolo", sheet["snn_mJ"], sheet["ann_mJ"], "the merged network as a float32 ANN, compute only",
        "SpikeYOLO's spreadsheet convention (power_cal.xlsx)", constants.cited(costs.MODEL_CONSTANTS["convention"]),
        [sheet["rule"]], {"first_layer_pj_per_mac": sheet["first_layer_pj_per_mac"], "rule": sheet["rule"],
                          "source": sheet["source"]})


def build_report(records: list, neurons: list, i: int, constants: EnergyConstants, counting: str,
                 image: str | None) -> EnergyReport:
    """The report of image ``i`` from the recorder's per-conv and per-neuron records."""
    layers, model_pj = [], {m: [0.0, 0.0] for m in costs.MODELS}
    spiking_macs = spiking_acs = observed = silent = effective_macs = 0.0
    for r in records:
        real = r.kind == "real"
        macs, elements, spikes = r.macs[i], r.elements[i], r.spikes[i]
        fr = 0.0 if real or not elements else spikes / elements
        acs = 0.0 if real else macs * fr
        counts = costs.ConvCounts(real, macs, acs, spikes, elements, r.outputs[i], r.weights, r.ann_macs[i],
                                  r.ann_inputs, r.ann_outputs)
        per_model = {}
        for m in costs.MODELS:
            snn, ann = costs.conv_pj(m, counts, constants)
            model_pj[m][0] += snn
            model_pj[m][1] += ann
            per_model[m] = {"snn_mJ": snn * 1e-9, "ann_mJ": ann * 1e-9}
        if real:
            effective_macs += macs
        else:
            spiking_macs += macs
            spiking_acs += acs
            observed += r.observed
            silent += r.silent[i]
        sparsity = r.silent[i] / r.observed if r.observed else None
        layers.append(LayerEnergy(r.name, r.kind, macs, spikes, elements, fr, acs, per_model["convention"]["snn_mJ"],
                                  r.ann_macs[i], r.encoding, sparsity, per_model))
    activity = []
    for n in neurons:
        counts = costs.NeuronCounts(n.updates[i], n.spikes[i], n.updates[i] / max(n.T, 1))
        per_model = {m: costs.neuron_pj(m, counts, constants) * 1e-9 for m in costs.MODELS}
        for m in costs.MODELS:
            model_pj[m][0] += per_model[m] * 1e9
        activity.append(NeuronActivity(n.name, n.updates[i], n.spikes[i], per_model))
    models = {
        m: ModelEnergy(m, snn * 1e-9, ann * 1e-9, costs.BASELINES[m], costs.DESCRIPTIONS[m],
                       constants.cited(costs.MODEL_CONSTANTS[m]), costs.ASSUMPTIONS[m])
        for m, (snn, ann) in model_pj.items()
    }
    models["spikeyolo"] = _spikeyolo_sheet(records, i, constants)
    convention = models["convention"]
    return EnergyReport(
        image=image,
        snn_mJ=convention.snn_mJ,
        ann_mJ=convention.ann_mJ,
        ann_merged_mJ=constants.e_mac_pj * 1e-9 * sum(r.merged_macs[i] for r in records),
        efficiency=convention.efficiency,
        macs=sum(l.macs for l in layers),
        acs=sum(l.acs for l in layers),
        spikes=sum(l.spikes for l in layers),
        counting=counting,
        constants=constants,
        layers=layers,
        energy_models=models,
        neurons=activity,
        effective_macs=effective_macs,
        spiking_macs=spiking_macs,
        spikes_per_element=spiking_acs / spiking_macs if spiking_macs else 0.0,
        activation_sparsity=silent / observed if observed else 0.0,
    )
