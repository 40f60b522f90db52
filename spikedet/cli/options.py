"""Settings that several commands share, defined once: weights, image size, device, output, source, energy.

A command that runs a library function takes its defaults from that function's signature
(:func:`default_of`), so ``spikedet convert`` and ``spikedet.convert.convert_weights`` cannot drift apart.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikedet.cli.parser import Setting, UsageError
from spikedet.io.images import DEFAULT_STRIDE
from spikedet.measure.costs import CONSTANTS, REPORTED, EnergyConstants

DEVICE_HELP = "cpu, 0, cuda:0 ... (default: the first GPU if there is one, else cpu)"
DEFAULT_WEIGHTS_HELP = "the shipped weights or $SPIKEDET_WEIGHTS"


def default_of(function: Callable | str, name: str) -> Any:
    """The default of ``function``'s parameter ``name``. ``function`` may be named as ``"module:function"``: its
    signature is then read from the module's source without importing it (the pipelines import torch and
    Ultralytics, which ``spikedet --help`` should not wait for); defaults must be literals there, anything
    else falls back to importing."""
    if callable(function):
        return inspect.signature(function).parameters[name].default
    defaults = _source_defaults(function)
    if name in defaults:
        return defaults[name]
    module, _, attr = function.partition(":")
    return inspect.signature(getattr(importlib.import_module(module), attr)).parameters[name].default


@functools.cache
def _source_defaults(target: str) -> dict[str, Any]:
    """``{parameter: default}`` of the function ``"module:function"`` whose defaults are literals, read from the
    module's source (nothing is imported)."""
    module, _, attr = target.partition(":")
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == attr)
    args = node.args
    out = {}
    positional = args.posonlyargs + args.args
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        out[arg.arg] = default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if default is not None:
            out[arg.arg] = default
    literal = {}
    for key, default in out.items():
        try:
            literal[key] = ast.literal_eval(default)
        except ValueError:
            continue  # not a literal: default_of imports the module for this one
    return literal


def weights(help: str = f"weights (default: {DEFAULT_WEIGHTS_HELP})") -> Setting:
    return Setting("str", None, help)


def imgsz(default: int | None, help: str = "inference size", square: bool = False, stride: bool = True) -> Setting:
    """An image size: checked by the one image-size rule (bounds and, with ``stride``, a multiple of the
    detectors' stride; the loaded model's own stride is checked again once it is known)."""
    return Setting("square" if square else "size", default, help, multiple=DEFAULT_STRIDE if stride else None)


def device(default: str | None = None, help: str = DEVICE_HELP) -> Setting:
    return Setting("str", default, help)


def output(suffix: str, default_name: str) -> Setting:
    return Setting("str", None, f"output {suffix} (default: ./{default_name})")


def source(help: str) -> Setting:
    return Setting("str", None, help)


# -- energy -----------------------------------------------------------------------------------------

def _constant_key(field_name: str) -> str:
    return field_name.removesuffix("_pj")


def energy_constants() -> dict[str, Setting]:
    """Every constant of the energy models as a setting: ``e_mac`` for ``EnergyConstants.e_mac_pj`` and so on,
    with the unit and the source in the help."""
    defaults = EnergyConstants()
    out = {}
    for name, (unit, source, meaning) in CONSTANTS.items():
        value = getattr(defaults, name)
        kind = "int" if isinstance(value, int) else "float"
        out[_constant_key(name)] = Setting(kind, value, f"{meaning}, {unit} ({source.split(',')[0]})",
                                           minimum=1 if kind == "int" else 0)
    return out


def constants_from(settings: dict) -> EnergyConstants:
    """The :class:`EnergyConstants` a command's settings (see :func:`energy_constants`) ask for."""
    try:
        return EnergyConstants(**{name: settings[_constant_key(name)] for name in CONSTANTS})
    except ValueError as e:
        raise UsageError(str(e).replace("_pj", "")) from None


def energy_model() -> Setting:
    return Setting("choice", "convention", "energy model the text leads with (all are in --json)",
                   choices=REPORTED)
