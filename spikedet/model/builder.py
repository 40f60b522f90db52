"""Model YAML -> ``nn.Sequential`` of layers, through spikedet's block registry.

The YAML format follows Ultralytics' (``backbone`` / ``head`` rows of ``[from, repeats, block, args]``,
``scales``), read by spikedet's own builder so that blocks come from :data:`spikedet.nn.registry.BLOCKS` only:

- ``neuron:``: the neuron every spiking block uses, e.g. ``{type: IBRALIF, D: 5.11, N: 100, T: 1}``.
- ``scales:``: ``{name: {depth, width, <variables>...}}``; string arguments naming a scale variable or
  ``nc`` are replaced by its value.
- channels: ``int(C * width)``; repeats: ``max(round(n * depth), 1)`` for ``n > 1``.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from spikedet.assets import resolve_model_yaml
from spikedet.errors import SpikedetError
from spikedet.nn import (
    get_block,  # the package: every block family is registered on import
)
from spikedet.nn.registry import scaled_depth
from spikedet.snn.neurons import make_neuron

LOGGER = logging.getLogger("spikedet")

DEFAULT_NEURON = {"type": "IBRALIF", "D": 5.11, "N": 100, "T": 1, "alpha": 0.25}


def load_model_cfg(model: str | Path | dict) -> dict:
    """Read a model config (name, path or dict) and settle its scale: returns a new dict.

    The result carries ``scale`` (the chosen scale or None) and ``yaml_file`` (the name asked for, so a
    checkpoint records e.g. ``spikeyolo-s.yaml``).
    """
    if isinstance(model, dict):
        cfg = copy.deepcopy(model)
    else:
        path, scale = resolve_model_yaml(model)
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise SpikedetError(f"model config {str(path)!r} is not valid YAML: {e}".replace("\n", " ")) from None
        if not isinstance(cfg, dict):
            raise SpikedetError(f"model config {str(path)!r} must be a YAML mapping")
        if scale is not None:
            cfg["scale"] = scale
        cfg["yaml_file"] = str(model)
    _check_cfg(cfg)
    scales = cfg.get("scales") or {}
    if scales:
        scale = cfg.get("scale")
        if scale is None:
            scale = "n" if "n" in scales else next(iter(scales))
            LOGGER.warning(f"no model scale given; using scale {scale!r} (name the model e.g. spikeyolo-{scale}.yaml)")
            cfg["scale"] = scale
        if scale not in scales:
            raise SpikedetError(f"unknown scale {scale!r} for this model; choose one of {', '.join(map(str, scales))}")
    return cfg


def _check_cfg(cfg: dict) -> None:
    for key in ("backbone", "head"):
        rows = cfg.get(key)
        if not isinstance(rows, list):
            raise SpikedetError(f"model config needs a '{key}:' list of [from, repeats, block, args] rows")
        for row in rows:
            if not (isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[2], str)):
                raise SpikedetError(f"bad model config row {row!r}: expected [from, repeats, block, args]")
    nc = cfg.get("nc")
    if not isinstance(nc, int) or nc < 1:
        raise SpikedetError(f"model config 'nc' must be a positive integer, got {nc!r}")


def neuron_spec(cfg: dict) -> dict:
    """The YAML's ``neuron:`` mapping (the neuron class supplies defaults for keys it leaves out)."""
    spec = cfg.get("neuron")
    if spec is None:
        return dict(DEFAULT_NEURON)
    if not isinstance(spec, dict):
        raise SpikedetError(f"model config 'neuron' must be a mapping like {DEFAULT_NEURON}, got {spec!r}")
    return {"type": "IBRALIF", **spec}


def scale_values(cfg: dict) -> dict[str, Any]:
    scales = cfg.get("scales") or {}
    if not scales:
        return {"depth": cfg.get("depth_multiple", 1.0), "width": cfg.get("width_multiple", 1.0)}
    values = scales[cfg["scale"]]
    if isinstance(values, (list, tuple)):  # Ultralytics' [depth, width, max_channels] form
        values = {"depth": values[0], "width": values[1]}
    return dict(values)


def build_layers(cfg: dict, ch: int = 3, verbose: bool = False) -> tuple[nn.Sequential, list[int]]:
    """Build the layer list of a model config (see :func:`load_model_cfg`); returns ``(layers, save)``."""
    spec = neuron_spec(cfg)
    try:
        make_neuron(spec)  # fail early with the neuron's own message
    except ValueError as e:
        raise SpikedetError(f"model config 'neuron': {e}") from None
    variables = {"nc": cfg["nc"], **scale_values(cfg)}
    depth, width = float(variables["depth"]), float(variables["width"])
    T = int(spec.get("T", 1))

    def new_neuron() -> nn.Module:
        return make_neuron(spec)

    rows = list(cfg["backbone"]) + list(cfg["head"])
    channels: list[int] = []
    layers, save = [], []
    if verbose:
        LOGGER.info(f"{'':>3}{'from':>18}{'n':>3}{'params':>11}  {'module':<28}{'arguments':<30}")
    for i, (source, repeats, name, args) in enumerate(rows):
        block = get_block(name)
        args = [_resolve_arg(a, variables, i) for a in (args or [])]
        sources = [source] if isinstance(source, int) else list(source)
        if any(not isinstance(s, int) or not (-max(i, 1) <= s < i or s == -1) for s in sources):
            raise SpikedetError(f"layer {i} ({name}): 'from' must name earlier layers, got {source!r}")
        c_in = [ch] if i == 0 else [channels[s] for s in sources]
        if not isinstance(repeats, int) or repeats < 1:
            raise SpikedetError(f"layer {i} ({name}): repeats must be a positive integer, got {repeats!r}")
        n = scaled_depth(repeats, depth)
        if n > 1 and not block.repeatable:
            raise SpikedetError(f"layer {i} ({name}) cannot be repeated")
        kwargs = {"neuron": new_neuron} if block.takes_neuron else {}
        rule = block.channels
        if rule == "out":
            c_out = int(args[0] * width)
            make = lambda: block.cls(c_in[0], c_out, *args[1:], **kwargs)  # noqa: E731
        elif rule == "same":
            c_out = c_in[0]
            make = lambda: block.cls(c_in[0], *args, **kwargs)  # noqa: E731
        elif rule == "keep":
            c_out = c_in[0]
            make = lambda: block.cls(*args, **kwargs)  # noqa: E731
        elif rule == "concat":
            c_out = sum(c_in)
            make = lambda: block.cls(*args, **kwargs)  # noqa: E731
        elif rule == "detect":
            c_out = 0
            nc, rest = (args[0], args[1:]) if args else (cfg["nc"], [])
            make = lambda: block.cls(nc, tuple(c_in), *rest, **kwargs)  # noqa: E731
        elif rule == "input":
            if i != 0:
                raise SpikedetError(f"layer {i} ({name}) is an input layer and must come first")
            c_out = ch
            make = lambda: block.cls(*(args or [T]), **kwargs)  # noqa: E731
        else:  # pragma: no cover - registry guards the values
            raise SpikedetError(f"block {name} has an unknown channel rule {rule!r}")
        try:
            module = nn.Sequential(*(make() for _ in range(n))) if n > 1 else make()
        except TypeError as e:
            raise SpikedetError(f"layer {i} ({name}) with arguments {args}: {e}") from None
        module.i, module.f, module.type = i, source, name
        module.np = sum(p.numel() for p in module.parameters())
        save.extend(s % i for s in sources if s != -1)
        layers.append(module)
        channels.append(c_out)
        if verbose:
            LOGGER.info(f"{i:>3}{str(source):>18}{n:>3}{module.np:11,}  {name:<28}{str(args):<30}")
    return nn.Sequential(*layers), sorted(set(save))


def _resolve_arg(value, variables: dict, layer: int):
    if isinstance(value, str):
        if value in variables:
            return variables[value]
        if value in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[value]
        raise SpikedetError(f"layer {layer}: unknown argument name {value!r} (known: {', '.join(variables)})")
    return value
