"""``spikedet import-spikeyolo``: SpikeYOLO checkpoints (BICLab/SpikeYOLO) as spikedet weights.

Every command that takes weights reads a SpikeYOLO ``.pt`` directly; this one writes it once as safetensors,
prints what it read from the file and, given a reference of their outputs, whether spikedet computes the same
spikes and head outputs. A thin shell over :func:`spikedet.io.spikeyolo_import.import_spikeyolo_weights`.
"""

from __future__ import annotations

import sys

from spikedet.cli import options
from spikedet.cli.parser import Invocation, Setting, UsageError, command, emit_json, say

#: ``neuron=`` choices: keep their I-LIF, or start IBRA-LIF at the paper's setting (D, N overridable).
NEURON_DEFAULTS = {"IBRALIF": {"D": 5.11, "N": 100}}


def _neuron(kind: str | None, D: float | None, N: float | None) -> dict | None:
    if kind in (None, "ILIF"):
        if D is not None or N is not None:
            raise UsageError("D and N choose an IBRA-LIF neuron: add neuron=IBRALIF (I-LIF keeps the file's D)")
        return None
    spec = {"type": kind, **NEURON_DEFAULTS[kind]}
    if D is not None:
        spec["D"] = D
    if N is not None:
        spec["N"] = N
    return spec


@command(
    "import-spikeyolo",
    "read a SpikeYOLO checkpoint (their .pt, full or stripped; no code runs) and write spikedet weights",
    main="CHECKPOINT",
    main_setting="model",
    settings={
        "model": Setting("str", None, "SpikeYOLO checkpoint (.pt from their trainer)"),
        "output": options.output(".safetensors", "<checkpoint name>.safetensors"),
        "reference": Setting("str", None, "a .safetensors of their outputs (spikes per layer, head outputs) to "
                                          "compare with, e.g. the fixture's spikeyolo-n.ref.safetensors"),
        "neuron": Setting("choice", "ILIF", "ILIF keeps their neuron (equal outputs); IBRALIF switches every neuron "
                          "(a fine-tuning start, not an equal network)", choices=("ILIF", "IBRALIF")),
        "D": Setting("float", None, "IBRA-LIF range D (default 5.11)", minimum=1e-3, maximum=1e4),
        "N": Setting("float", None, "IBRA-LIF codes per unit N (default 100)", minimum=1e-3, maximum=1e6),
    },
    examples=(
        "spikedet import-spikeyolo best.pt -o spikeyolo-n.safetensors",
        "spikedet import-spikeyolo spikeyolo-n.pt reference=spikeyolo-n.ref.safetensors --json",
        "spikedet import-spikeyolo best.pt -o ibra-start.safetensors neuron=IBRALIF",
    ),
)
def cmd_import_spikeyolo(inv: Invocation) -> int:
    s = inv.settings
    if not s["model"]:
        raise UsageError("give the SpikeYOLO checkpoint: spikedet import-spikeyolo CHECKPOINT [-o OUT.safetensors]")
    from spikedet.io.spikeyolo_import import import_spikeyolo_weights

    result = import_spikeyolo_weights(s["model"], s["output"], reference=s["reference"],
                                      neuron=_neuron(s["neuron"], s["D"], s["N"]))
    if inv.json:
        emit_json(result.as_dict())
    else:
        r = result.summary
        say(f"{result.checkpoint}: SpikeYOLO {r['version'] or '?'} checkpoint, loaded '{r['entry']}' (their loader "
            f"prefers ema), epoch {r['epoch']}")
        say(f"network: scale {r['scale']} (width {r['width']:g}), {r['parameters']:,} parameters, {r['tensors']} "
            f"tensors, nc {r['nc']}, strides {r['stride']}")
        say(f"neurons: {r['neuron_layers']} I-LIF layers, D={r['D']}, T={r['T']}; BatchNorm eps {r['batchnorm']['eps']:g}, "
            f"momentum {r['batchnorm']['momentum']}")
        if result.comparison is not None:
            for x, v in result.comparison["inputs"].items():
                say(f"reference {x} ({v['imgsz'][0]}x{v['imgsz'][1]}): {v['spike_mismatches']} spike mismatches in "
                    f"{v['layers']} neuron layers ({v['layers_compared_exactly']} compared exactly); head outputs "
                    f"{'within' if v['output_close'] else 'NOT within'} rtol 1e-5 + atol 1e-4: max |diff| boxes "
                    f"{v['boxes_max_abs_diff']:.1e} px, class scores {v['scores_max_abs_diff']:.1e}")
            say(f"equal to SpikeYOLO's own outputs: {'yes' if result.comparison['equal'] else 'NO'}")
        n = result.neuron
        if n.get("type") != "ILIF":
            say(f"neurons switched to {n['type']} D={n.get('D')} N={n.get('N')}: a starting point for fine-tuning, "
                "not equal to the checkpoint")
        if result.output is not None:
            say(f"saved {result.output}")
    if result.comparison is not None and not result.comparison["equal"]:
        print("spikedet import-spikeyolo: error: the outputs differ from SpikeYOLO's reference; nothing was written",
              file=sys.stderr)
        return 1
    return 0
