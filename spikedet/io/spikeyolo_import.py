"""``spikedet import-spikeyolo`` as a function: a SpikeYOLO checkpoint -> spikedet weights, with a report.

    >>> result = import_spikeyolo_weights("their_best.pt", "best.safetensors",
    ...                                   reference="spikeyolo-n.ref.safetensors")   # doctest: +SKIP
    >>> result.comparison["equal"]                                                     # doctest: +SKIP
    True

The weights keep their I-LIF neurons unless ``neuron`` names another (``{"type": "IBRALIF", "D": 5.11, "N": 100}``:
the IBRA-LIF paper's setting, a starting point for fine-tuning, not an equivalent network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spikedet.errors import SpikedetError
from spikedet.io.outputs import output_file
from spikedet.io.restricted_pickle import check_zip, readable
from spikedet.io.spikeyolo import import_spikeyolo
from spikedet.io.spikeyolo_check import compare_with_reference
from spikedet.io.weights import save_model
from spikedet.snn.neurons import make_neuron

__all__ = ["ImportResult", "import_spikeyolo_weights"]


@dataclass
class ImportResult:
    """What :func:`import_spikeyolo_weights` read, checked and wrote."""

    checkpoint: str
    output: Path | None
    summary: dict
    neuron: dict
    comparison: dict | None = field(default=None)

    def as_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "output": None if self.output is None else str(self.output),
                "read": self.summary, "neuron": self.neuron, "reference": self.comparison}


def import_spikeyolo_weights(checkpoint: str | Path, output: str | Path | None = None, *,
                             reference: str | Path | None = None, neuron: dict | None = None) -> ImportResult:
    """Read a SpikeYOLO ``.pt``, optionally compare it with a reference of their outputs, optionally switch its
    neurons, and write spikedet weights (``<checkpoint name>.safetensors`` by default; nothing is written when
    the comparison finds a difference)."""
    checkpoint = Path(checkpoint)
    target = output_file(output, (".safetensors",), default=checkpoint.with_suffix(".safetensors").name)
    if neuron is not None:
        try:
            make_neuron({"T": 1, **neuron})
        except ValueError as e:
            raise SpikedetError(f"neuron: {e}") from None
    if checkpoint.is_file():
        check_zip(checkpoint)
    with readable(checkpoint):  # a corrupt or tampered file: one line, as every loader says it
        imported = import_spikeyolo(checkpoint)
    comparison = compare_with_reference(imported.model, reference) if reference is not None else None
    model = imported.model if neuron is None else imported.model.with_neuron(neuron)
    if comparison is not None and not comparison["equal"]:
        target = None  # as convert does: weights that fail their check are not written
    if target is not None:
        save_model(model, target, extra={"imported_from": {"format": "spikeyolo", "file": checkpoint.name,
                                                           "entry": imported.entry, "version": imported.version}})
    spec = dict(model.yaml.get("neuron") or {})
    return ImportResult(str(checkpoint), target, imported.summary(), spec, comparison)
