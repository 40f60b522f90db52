"""Activation analysis: which codes each spiking layer actually emits, and what each layer costs.

The IBRA-LIF paper's Fig. 3 ("spike activation limitation") shows that integer neurons with a large range
use only its low end. :func:`analyze` measures the same thing on real images: per neuron layer, the
histogram of emitted codes (how much of ``0..L`` is used), plus per conv layer the firing rate, ACs and
energy. Outputs: ``code_histograms.png``, ``code_usage.png``, ``energy_per_layer.png``, ``firing_rates.csv``
and ``analysis.json``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from torch import nn

from spikedet.engine.yolo import SpikeYOLO
from spikedet.measure import energy
from spikedet.measure.report import ratio_words
from spikedet.progress import progress
from spikedet.snn.neurons import SpikingNeuron
from spikedet.snn.spikes import SpikeTrain


class CodeHistograms:
    """Accumulates, per neuron layer, the histogram of codes it fires (spike mode); counted through the
    energy ``recorder``'s cache when one is given, so the convs reading a train do not count it again."""

    def __init__(self, model: nn.Module, recorder: energy.EnergyRecorder | None = None):
        self.recorder = recorder
        self.hist: dict[str, np.ndarray] = {}
        self.levels: dict[str, int] = {}
        self.codes: dict = {}
        self._handles = []
        for name, m in model.named_modules():
            if isinstance(m, SpikingNeuron):
                self._handles.append(m.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module, args, out):
            if not isinstance(out, SpikeTrain):
                return
            levels = out.code.levels
            per_image = (self.recorder.histogram(out.codes, levels) if self.recorder is not None
                         else energy.code_histograms(out.codes, 1, levels))
            counts = per_image.sum(0).numpy()
            self.hist[name] = self.hist.get(name, 0) + counts
            self.levels[name] = levels
            self.codes[name] = out.code

        return hook

    def close(self) -> None:
        for h in self._handles:
            h.remove()

    def stats(self) -> list[dict]:
        rows = []
        for name, counts in self.hist.items():
            total = counts.sum()
            code = self.codes[name]
            codes = np.arange(len(counts))
            p99 = _p99(counts)
            spikes = code.spike_table().numpy()  # spikes per code under the neuron's own encoding
            rows.append({
                "neuron": name,
                "levels": int(self.levels[name]),
                "zero_code": int(code.zero),
                "encoding": code.encoding,
                "mean_code": float((codes * counts).sum() / max(total, 1)),
                "p99_code": p99,
                "max_code": int(codes[counts > 0].max()) if total else 0,
                "zero_fraction": float(counts[code.zero] / max(total, 1)),  # codes standing for the value 0
                "saturated_fraction": float(counts[-1] / max(total, 1)),
                "spikes_per_element": float((spikes * counts).sum() / max(total, 1)),
                "range_used": float((p99 + 1) / (self.levels[name] + 1)),
            })
        return rows


def analyze(yolo: SpikeYOLO, files: list[str], output: str | Path, *, imgsz: int = 640, conf: float = 0.25,
            device: str | None = None, counting: energy.Counting = "auto",
            constants: energy.EnergyConstants | None = None) -> dict[str, Path]:
    """Run ``files`` one at a time through ``yolo`` (its model in spike mode) and write the analysis into the
    folder ``output``; returns the files written by kind (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    constants = constants or energy.EnergyConstants()
    layer_totals: dict[str, dict] = {}
    model_totals: dict[str, dict] = {}
    with energy.measure(yolo.model, counting) as recorder:
        histograms = CodeHistograms(yolo.model, recorder)
        try:
            for file, _ in progress(yolo.predict_files(files, imgsz=imgsz, conf=conf, device=device), "analyze",
                                    len(files)):
                report = recorder.next_report(constants, str(file))
                for layer in report.layers:
                    t = layer_totals.setdefault(layer.name, {"name": layer.name, "input": layer.input, "macs": 0.0,
                                                             "spikes": 0.0, "input_elements": 0.0, "acs": 0.0,
                                                             "energy_mJ": 0.0, "ann_mJ": 0.0})
                    t["macs"] += layer.macs
                    t["spikes"] += layer.spikes
                    t["input_elements"] += layer.input_elements
                    t["acs"] += layer.acs
                    t["energy_mJ"] += layer.energy_mJ
                    t["ann_mJ"] += layer.energy_models["convention"]["ann_mJ"]
                for name, model in report.energy_models.items():
                    total = model_totals.setdefault(name, {"snn_mJ": 0.0, "ann_mJ": 0.0, "baseline": model.baseline})
                    total["snn_mJ"] += model.snn_mJ
                    total["ann_mJ"] += model.ann_mJ
        finally:
            histograms.close()
    n = max(len(files), 1)
    models = {name: {"snn_mJ": t["snn_mJ"] / n, "ann_mJ": t["ann_mJ"] / n,
                     "efficiency": t["ann_mJ"] / t["snn_mJ"] if t["snn_mJ"] > 0 else None, "baseline": t["baseline"]}
              for name, t in model_totals.items()}
    conv_rows = []
    for t in layer_totals.values():
        conv_rows.append({**{k: (v / n if isinstance(v, float) else v) for k, v in t.items()},
                          "firing_rate": t["spikes"] / t["input_elements"] if t["input"] != "real" and t["input_elements"] else 0.0})
    neuron_rows = histograms.stats()

    written = {
        "code_histograms": _plot_histograms(histograms, output / "code_histograms.png"),
        "code_usage": _plot_usage(neuron_rows, output / "code_usage.png"),
        "energy_per_layer": _plot_energy(conv_rows, models.get("convention"), output / "energy_per_layer.png"),
        "firing_rates_csv": _write_csv(conv_rows, neuron_rows, output / "firing_rates.csv"),
    }
    summary = {"images": [str(f) for f in files], "energy_models": models, "per_image_averages": conv_rows,
               "neurons": neuron_rows,
               "constants": constants.as_dict(), "caveat": energy.CAVEAT}
    (output / "analysis.json").write_text(json.dumps(summary, indent=2))
    written["analysis_json"] = output / "analysis.json"
    return written


def _p99(counts: np.ndarray) -> int:
    """The smallest code at or below which 99 % of the emitted codes lie."""
    return int(np.searchsorted(np.cumsum(counts) / max(counts.sum(), 1), 0.99))


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(name: str) -> str:
    return name.replace("model.", "").replace(".neuron", "").replace("unit.", "")


def _plot_histograms(h: CodeHistograms, path: Path) -> Path:
    import matplotlib.pyplot as plt

    names = list(h.hist)
    pick = names if len(names) <= 16 else [names[round(i * (len(names) - 1) / 15)] for i in range(16)]
    cols = 4
    rows = max(math.ceil(len(pick) / cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, pick):
        counts = h.hist[name]
        total = counts.sum()
        used = np.flatnonzero(counts)
        top = int(used.max()) if used.size else 0  # the axis ends at the largest code emitted, not at L
        ax.bar(np.arange(top + 1), counts[: top + 1] / max(total, 1), width=1.0, color="tab:blue")
        ax.set_yscale("log")
        ax.set_xlim(-0.5, max(top, 1) + 0.5)
        ax.set_title(f"{_short(name)}: 99% <= {_p99(counts)}, max {top} of L={h.levels[name]}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pick):]:
        ax.axis("off")
    which = (f"all {len(names)} neuron layers" if len(pick) == len(names) else
             f"{len(pick)} of {len(names)} neuron layers, evenly spaced (all layers: firing_rates.csv)")
    fig.suptitle(f"Emitted integer codes per neuron layer (fraction, log scale): {which}", fontsize=11)
    fig.supxlabel("code q (axis up to the largest code emitted)", fontsize=9)
    return _save(fig, path)


def _plot_usage(rows: list[dict], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.16), 5))
    x = np.arange(len(rows))
    ax.plot(x, [r["range_used"] for r in rows], marker=".", label="99th-percentile code / L", color="tab:blue")
    ax.plot(x, [r["zero_fraction"] for r in rows], marker=".", label="fraction of zero codes", color="tab:gray")
    ax.plot(x, [r["saturated_fraction"] for r in rows], marker=".", label="fraction at L (saturated)", color="tab:red")
    ax.set_xticks(x, [_short(r["neuron"]) for r in rows], rotation=90, fontsize=6)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_xlabel("neuron layer (forward order)")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"How much of each neuron's code range is used ({len(rows)} neuron layers)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _plot_energy(rows: list[dict], totals: dict | None, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.16), 5))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["ann_mJ"] for r in rows], width=0.4, label="ANN (cheapest form, MACs)", color="tab:gray")
    ax.bar(x + 0.2, [r["energy_mJ"] for r in rows], width=0.4, label="SNN (ACs from spikes)", color="tab:green")
    ax.set_yscale("log")
    ax.set_xticks(x, [_short(r["name"]) for r in rows], rotation=90, fontsize=6)
    ax.set_xlabel("conv layer (forward order)")
    ax.set_ylabel("mJ per image")
    title = "Energy per conv layer, mean per image (the field's compute-only convention, 45 nm)"
    if totals and totals["efficiency"]:
        verdict = ratio_words(totals["efficiency"], first=False)
        title += f"\ntotal: SNN {totals['snn_mJ']:.3g} mJ vs float32 ANN {totals['ann_mJ']:.3g} mJ ({verdict})"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _write_csv(conv_rows: list[dict], neuron_rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "name", "input", "firing_rate", "spikes", "input_elements", "macs", "acs", "energy_mJ",
                         "mean_code", "p99_code", "zero_fraction", "saturated_fraction", "levels"])
        for r in conv_rows:
            writer.writerow(["conv", r["name"], r["input"], f"{r['firing_rate']:.5f}", f"{r['spikes']:.0f}",
                             f"{r['input_elements']:.0f}", f"{r['macs']:.0f}", f"{r['acs']:.0f}", f"{r['energy_mJ']:.6f}",
                             "", "", "", "", ""])
        for r in neuron_rows:
            writer.writerow(["neuron", r["neuron"], "", f"{r['spikes_per_element']:.5f}", "", "", "", "", "",
                             f"{r['mean_code']:.3f}", r["p99_code"], f"{r['zero_fraction']:.4f}",
                             f"{r['saturated_fraction']:.4f}", r["levels"]])
    return path
