"""Check an imported SpikeYOLO model against what SpikeYOLO's own code computed: spikes per layer, head outputs.

A reference is a safetensors file of their outputs on some inputs (the fixture's ``spikeyolo-*.ref.safetensors``,
or the compact form :func:`write_compact_reference` derives from one). Per input ``<x>`` it holds:

- the input: ``<x>.input`` (float32 ``[1, 3, H, W]``) or ``<x>.image_u8`` (uint8 ``[1, 3, H, W]``; input = u8/255);
- ``<x>.output``: their ``DetectionModel(x)[0]`` in eval (decoded boxes and class scores, ``[1, 4 + nc, anchors]``);
- per neuron layer (their module name): ``<x>.spike.<name>`` (the full uint8 output), or its channel sums
  ``<x>.spike_chsum.<name>`` plus the sha256 of the uint8 tensor (in the compact file's metadata, or in the
  fixture's ``fixture.json`` beside their file).

:func:`compare_with_reference` runs the model on each input and counts spike mismatches per layer: exactly when
the full tensor is stored, else 0 when the hash matches and, when it does not, at least the channel-sum
difference. Head outputs must agree to ``allclose(rtol=1e-5, atol=1e-4)``: float32 accumulation order alone
(e.g. the thread count) moves box coordinates, in pixels, by about 1.2e-4; class scores move by far less.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from spikedet.errors import SpikedetError
from spikedet.io.outputs import output_file, write_safetensors
from spikedet.io.spikeyolo_names import LAYER_TYPES, spikedet_name

__all__ = ["compare_with_reference", "neuron_map", "read_reference", "write_compact_reference"]

META_KEY = "spikedet-spikeyolo-reference"
OUTPUT_RTOL, OUTPUT_ATOL = 1e-5, 1e-4


def neuron_map(names: list[str]) -> dict[str, str]:
    """Their neuron layer names -> spikedet's (the block type comes from the layer index)."""
    out = {}
    for name in names:
        parts = name.split(".")
        if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) >= len(LAYER_TYPES):
            raise SpikedetError(f"the reference names an unknown neuron layer {name!r} (expected model.<0.."
                                f"{len(LAYER_TYPES) - 1}>.<...>)")
        mine = spikedet_name(name, LAYER_TYPES[int(parts[1])], tensor=False)
        if mine is not None:
            out[name] = mine
    return out


def _u8_sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.to(torch.uint8).contiguous().numpy().tobytes()).hexdigest()


def read_reference(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of a reference file and its per-layer facts ``{input: {layer: {"sha256_u8", ...}}}``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise SpikedetError(f"reference {str(path)!r} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:  # noqa: BLE001 -- safetensors raises its own error types for corrupt files
        raise SpikedetError(f"{str(path)!r} is not a readable safetensors reference: {e}") from None
    if META_KEY in metadata:
        return tensors, json.loads(metadata[META_KEY])["layers"]
    facts: dict = {}
    fixture = path.with_name("fixture.json")
    if fixture.is_file():  # their fixture's layout: per-layer hashes for every model whose ref_file this is
        for model in json.loads(fixture.read_text()).get("models", {}).values():
            if (model.get("ref_file") or {}).get("name") == path.name:
                facts = {x: {r["name"]: r for r in rows} for x, rows in model.get("lif", {}).items()}
    return tensors, facts


def _inputs(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, t in tensors.items():
        x, _, kind = key.partition(".")
        if kind == "input":
            out[x] = t.float()
        elif kind == "image_u8" and x not in out:
            out[x] = t.float() / 255
    if not out:
        raise SpikedetError("the reference holds no inputs (<x>.input or <x>.image_u8)")
    missing = sorted(x for x in out if f"{x}.output" not in tensors)
    if missing:
        raise SpikedetError(f"the reference holds no head output for input {missing[0]!r} ({missing[0]}.output)")
    return out


@torch.no_grad()
def _run(model: nn.Module, x: torch.Tensor, neurons: dict[str, str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    hooks = [modules[mine].register_forward_hook(lambda m, i, o, name=theirs: captured.__setitem__(name, o.detach()))
             for theirs, mine in neurons.items()]
    try:
        y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return (y[0] if isinstance(y, (tuple, list)) else y), captured


def compare_with_reference(model: nn.Module, reference: str | Path) -> dict:
    """Run ``model`` (float mode, eval) on the reference's inputs and compare spikes and head outputs.

    Returns ``{"inputs": {x: {...}}, "equal": bool}`` with per input: ``layers``, ``layers_compared_exactly``,
    ``spike_mismatches``, ``mismatching_layers`` (name -> count), ``output_close``, and the largest absolute
    output differences: overall, of the boxes (pixels) and of the class scores.
    """
    tensors, facts = read_reference(reference)
    model = model.float().eval()
    device = next(model.parameters()).device
    result, equal = {}, True
    for x, image in _inputs(tensors).items():
        names = sorted({k.split(".", 2)[2] for k in tensors if k.startswith((f"{x}.spike.", f"{x}.spike_chsum."))})
        neurons = neuron_map(names)
        output, spikes = _run(model, image.to(device), neurons)
        mismatches, exact = {}, 0
        for name in neurons:
            mine = spikes[name].cpu()
            full = tensors.get(f"{x}.spike.{name}")
            if full is not None:
                count = int((mine.to(torch.uint8) != full).sum()) if mine.shape == full.shape else mine.numel()
                exact += 1
            else:
                chsum = mine.sum(dim=tuple(d for d in range(mine.dim()) if d != 2)).round().to(torch.int64)
                count = int((chsum - tensors[f"{x}.spike_chsum.{name}"].to(torch.int64)).abs().sum())
                sha = (facts.get(x, {}).get(name) or {}).get("sha256_u8")
                if sha is not None:
                    count = 0 if _u8_sha256(mine) == sha else max(count, 1)
                    exact += 1
            if count:
                mismatches[name] = count
        ref_out, output = tensors[f"{x}.output"].float(), output.cpu().float()
        same_shape = output.shape == ref_out.shape
        diff = (output - ref_out).abs() if same_shape else None
        close = same_shape and bool(torch.allclose(output, ref_out, OUTPUT_RTOL, OUTPUT_ATOL))
        result[x] = {
            "layers": len(neurons), "layers_compared_exactly": exact, "spike_mismatches": sum(mismatches.values()),
            "mismatching_layers": mismatches, "output_close": close,
            "output_max_abs_diff": float(diff.max()) if diff is not None else float("inf"),
            "boxes_max_abs_diff": float(diff[:, :4].max()) if diff is not None else float("inf"),  # pixels
            "scores_max_abs_diff": float(diff[:, 4:].max()) if diff is not None else float("inf"),
            "imgsz": list(image.shape[-2:]),
        }
        equal = equal and not mismatches and close and exact == len(neurons) and len(neurons) > 0
    return {"inputs": result, "equal": equal}


def write_compact_reference(reference: str | Path, output: str | Path) -> Path:
    """Derive the compact reference (inputs as uint8, outputs, channel sums, per-layer hashes) from a full one."""
    tensors, facts = read_reference(reference)
    out: dict[str, torch.Tensor] = {}
    layers: dict = {}
    for x, image in _inputs(tensors).items():
        u8 = (image * 255).round()
        if not torch.equal(u8 / 255, image):
            raise SpikedetError(f"input {x!r} is not a uint8 image / 255: the compact form cannot hold it")
        out[f"{x}.image_u8"] = u8.to(torch.uint8)
        out[f"{x}.output"] = tensors[f"{x}.output"].float().contiguous()
        layers[x] = {}
        for key, t in tensors.items():
            if key.startswith(f"{x}.spike."):
                name = key[len(f"{x}.spike."):]
                out[f"{x}.spike_chsum.{name}"] = t.sum(dim=(0, 1, 3, 4), dtype=torch.int32).contiguous()
                layers[x][name] = {"sha256_u8": _u8_sha256(t), "sum": int(t.sum(dtype=torch.int64)),
                                   "shape": list(t.shape)}
            elif key.startswith(f"{x}.spike_chsum.") and key not in out:
                name = key[len(f"{x}.spike_chsum."):]
                out[key] = t.to(torch.int32).contiguous()
                if name in facts.get(x, {}):
                    layers[x][name] = {k: facts[x][name][k] for k in ("sha256_u8", "sum", "shape") if k in facts[x][name]}
    path = output_file(output, (".safetensors",))
    return write_safetensors(out, path, metadata={META_KEY: json.dumps({"source": Path(reference).name, "layers": layers})})
