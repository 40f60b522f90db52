"""Commands that measure a spiking model: ``energy`` and ``analyze``.

Thin shells over :func:`spikedet.measure.pipelines.measure_energy` and :func:`~spikedet.measure.pipelines.analyze_weights`,
whose signatures give the defaults.
"""

from __future__ import annotations

import json

from spikedet.cli import options
from spikedet.cli.options import default_of
from spikedet.cli.parser import Invocation, Setting, command, emit_json, plural, say
from spikedet.measure.costs import BASELINES, MODELS
from spikedet.measure.report import CAVEAT

# The pipelines (torch, Ultralytics) are imported when a command runs; their defaults are read from source.
MEASURE_ENERGY = "spikedet.measure.pipelines:measure_energy"
ANALYZE_WEIGHTS = "spikedet.measure.pipelines:analyze_weights"


def _measure_settings(function) -> dict[str, Setting]:
    return {
        "model": options.weights(),
        "source": options.source("image, folder or glob (default: Ultralytics' bus.jpg)"),
        "imgsz": options.imgsz(default_of(function, "imgsz"), square=True),
        "device": options.device(default_of(function, "device")),
        "conf": Setting("float", default_of(function, "conf"), "detection confidence threshold", minimum=0, maximum=1),
        "counting": Setting("choice", default_of(function, "counting"), "spike counting: neuron's own, bit planes, or unary",
                            choices=("auto", "binary", "unary")),
        "path": Setting("choice", default_of(function, "path"), "execution path (same spikes either way)",
                        choices=("integer", "bitplane")),
        **options.energy_constants(),
    }


def _arguments(s: dict) -> dict:
    keys = ("imgsz", "device", "conf", "counting", "path")
    return {**{k: s[k] for k in keys}, "constants": options.constants_from(s)}


@command(
    "energy",
    "per-image, per-layer energy estimate (ACs/MACs from the actual spikes) with detections",
    main="WEIGHTS",
    main_setting="model",
    settings={**_measure_settings(MEASURE_ENERGY), "layers": Setting("bool", False, "print the per-layer table"),
              "energy_model": options.energy_model()},
    examples=("spikedet energy best-bitplane.safetensors source=data/coco8/images/val --json",),
)
def cmd_energy(inv: Invocation) -> int:
    s = inv.settings
    from spikedet.measure.pipelines import measure_energy

    results = measure_energy(s["model"], s["source"], **_arguments(s))
    if inv.json:
        emit_json([r.to_dict() for r in results])
        return 0
    lead = s["energy_model"]
    for r in results:
        model = r.report.energy_models[lead]
        say(f"{r.report.image}: {plural(len(r.detections), 'detection')}; SNN {model.snn_mJ:.4f} mJ vs ANN "
            f"{model.ann_mJ:.4f} mJ ({lead}): {r.report.verdict(lead)}")
        if s["layers"]:
            say(r.report.table())
    say(f"{len(results)} images, mean per image:")
    for name in [lead] + [m for m in MODELS if m != lead]:
        snn = sum(r.report.energy_models[name].snn_mJ for r in results)
        ann = sum(r.report.energy_models[name].ann_mJ for r in results)
        ratio = f"SNN/ANN {snn / ann:.3f}" if ann > 0 else "SNN/ANN n/a (ANN energy 0)"
        say(f"  {name:<10} SNN {snn / len(results):.4f} mJ, ANN {ann / len(results):.4f} mJ; {ratio} "
            f"(against {BASELINES[name]})")
    spe = sum(r.report.acs for r in results) / max(sum(r.report.spiking_macs for r in results), 1)
    say(f"  {spe:.2f} spikes per input element of the spiking convs (ACs / MACs)")
    say(CAVEAT)
    return 0


@command(
    "analyze",
    "activation analysis: per-layer code histograms, energy per layer (PNG) and firing rates (CSV, JSON)",
    main="WEIGHTS",
    main_setting="model",
    settings={**_measure_settings(ANALYZE_WEIGHTS),
              "output": Setting("str", default_of(ANALYZE_WEIGHTS, "output"), "output folder")},
    examples=("spikedet analyze best.pt source=data/coco8/images/val -o analysis",),
)
def cmd_analyze(inv: Invocation) -> int:
    s = inv.settings
    from spikedet.measure.pipelines import analyze_weights

    written = analyze_weights(s["model"], s["source"], s["output"], **_arguments(s))
    if inv.json:
        emit_json({k: str(v) for k, v in written.items()})
        return 0
    for kind, path in written.items():
        say(f"{kind:<18} {path}")
    for line in analysis_summary(json.loads(written["analysis_json"].read_text())):
        say(line)
    return 0


def analysis_summary(summary: dict) -> list[str]:
    """The few lines ``analyze`` ends with: images, mean energy per model, the busiest and the idlest layers."""
    lines = [f"{plural(len(summary['images']), 'image')}, mean per image:"]
    for name, m in summary["energy_models"].items():
        ratio = f"{m['efficiency']:.2f}x" if m["efficiency"] else "n/a"
        lines.append(f"  {name:<11} SNN {m['snn_mJ']:.4f} mJ vs ANN {m['ann_mJ']:.4f} mJ  (ANN / SNN {ratio})")
    spiking = [r for r in summary["per_image_averages"] if r["input"] != "real"]
    if spiking:
        rate = sum(r["spikes"] for r in spiking) / max(sum(r["input_elements"] for r in spiking), 1)
        busiest = max(spiking, key=lambda r: r["firing_rate"])
        idlest = min(spiking, key=lambda r: r["firing_rate"])
        lines.append(f"  {rate:.3f} spikes per input element over {plural(len(spiking), 'spiking conv')}; highest "
                     f"{busiest['firing_rate']:.3f} ({busiest['name']}), lowest {idlest['firing_rate']:.3f} ({idlest['name']})")
    saturated = [n for n in summary["neurons"] if n.get("saturated_fraction", 0) > 0.01]
    lines.append(f"  {len(saturated)} of {len(summary['neurons'])} neuron layers saturate (> 1% of codes at L)")
    return lines
