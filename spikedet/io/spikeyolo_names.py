"""Where each module of a SpikeYOLO checkpoint lives in spikedet's model: the one name map.

SpikeYOLO (BICLab, ECCV 2024) names its modules after its own classes (``model.6.0.Conv.pwconv3.body.1.0``,
``model.9.cv1.lif``); spikedet builds the same network from its blocks (:mod:`spikedet.nn.spikeyolo`), whose
modules have other names (``model.6.0.sep.tail.body.pw``, ``model.9.cv1.unit.neuron``). :func:`spikedet_name`
turns one into the other for a module or a tensor (``...weight``); the loader copies tensors through it and the
equality check compares each of their neuron layers with the spikedet neuron it names.

The map is per block type (the class of the checkpoint's top-level layer), written as module-path prefixes:

    >>> spikedet_name("model.6.0.Conv.pwconv3.body.1.0.weight", "MS_ConvBlock")
    'model.6.0.sep.tail.body.pw.weight'
    >>> spikedet_name("model.26.cv3.2.2.lif", "SpikeDetect")
    'model.26.cv3.2.2.neuron'
"""

from __future__ import annotations

import re

from spikedet.errors import SpikedetError

__all__ = ["LAYERS", "LAYER_TYPES", "UNUSED_MODULES", "spikedet_name"]

# The network their snn_yolov8.yaml describes: layer type and inputs per row (the spikedet rows are read from
# the file; this is what a checkpoint must match).
LAYERS = (
    ("MS_GetT", -1), ("MS_DownSampling", -1), ("MS_AllConvBlock", -1), ("MS_DownSampling", -1),
    ("MS_AllConvBlock", -1), ("MS_DownSampling", -1), ("MS_ConvBlock", -1), ("MS_DownSampling", -1),
    ("MS_ConvBlock", -1), ("SpikeSPPF", -1), ("MS_StandardConv", -1), ("Upsample", -1), ("MS_ConvBlock", -1),
    ("Concat", [-1, 6]), ("MS_StandardConv", -1), ("Upsample", -1), ("MS_AllConvBlock", -1), ("Concat", [-1, 4]),
    ("MS_StandardConv", -1), ("MS_AllConvBlock", -1), ("MS_StandardConv", -1), ("Concat", [-1, 14]),
    ("MS_ConvBlock", -1), ("MS_StandardConv", -1), ("Concat", [-1, 10]), ("MS_ConvBlock", -1),
    ("SpikeDetect", [19, 22, 25]),
)
#: The block type of each layer, by index.
LAYER_TYPES = [kind for kind, _ in LAYERS]

# A pre-activation unit (their MS_StandardConv and SpikeConv: lif -> conv -> bn) is spikedet's SpikingConv.
_UNIT = {"lif": "unit.neuron", "conv": "unit.body", "bn": "unit.norm"}

# Their SepConv (block attribute ``Conv``) is spikedet's SepConv (block attribute ``sep``). A BNAndPadLayer and
# the BatchNorm2d inside it are both spikedet's one BNPad (a BatchNorm2d that pads with its response to 0).
_SEP = {
    "lif1": "pw.neuron", "pwconv1": "pw.body", "bn1": "pw.norm",
    "lif2": "dw.neuron", "dwconv2": "dw.body", "bn2": "dw.norm",
    "lif3": "tail.neuron", "pwconv3.body.0": "tail.body.bn", "pwconv3.body.0.bn": "tail.body.bn", "pwconv3.body.1.0": "tail.body.pw",
    "pwconv3.body.1.1": "tail.body.dw", "bn3": "tail.norm",
}


def _repconv_unit(i: int) -> dict[str, str]:
    """Their ``lif{i} -> conv{i} (RepConv) -> bn{i}`` in MS_ConvBlock: spikedet's ``conv{i}`` SpikingConv."""
    return {
        f"lif{i}": f"conv{i}.neuron", f"bn{i}": f"conv{i}.norm",
        f"conv{i}.body.0": f"conv{i}.body.pw1", f"conv{i}.body.1": f"conv{i}.body.bn1",
        f"conv{i}.body.1.bn": f"conv{i}.body.bn1",
        f"conv{i}.body.2.0": f"conv{i}.body.dw", f"conv{i}.body.2.1": f"conv{i}.body.pw2",
        f"conv{i}.body.2.2": f"conv{i}.body.bn2",
    }


def _prefixed(prefix: str, ours: str, table: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}.{k}": f"{ours}.{v}" for k, v in table.items()}


#: Per SpikeYOLO block type: their module path inside the block -> spikedet's.
BLOCK_MODULES: dict[str, dict[str, str]] = {
    "MS_GetT": {},
    "MS_DownSampling": {"encode_lif": "unit.neuron", "encode_conv": "unit.body", "encode_bn": "unit.norm"},
    "MS_StandardConv": dict(_UNIT),
    "MS_AllConvBlock": {**_prefixed("Conv", "sep", _SEP), **_prefixed("conv1", "conv1", _UNIT),
                        **_prefixed("conv2", "conv2", _UNIT)},
    "MS_ConvBlock": {**_prefixed("Conv", "sep", _SEP), **_repconv_unit(1), **_repconv_unit(2)},
    "SpikeSPPF": {**_prefixed("cv1", "cv1", _UNIT), **_prefixed("cv2", "cv2", _UNIT)},
    "Upsample": {},
    "Concat": {},
}

#: Modules of theirs that spikedet has no counterpart for because their code never calls them.
UNUSED_MODULES = ("dfl.lif",)

_HEAD_UNIT = re.compile(r"(cv[23])\.(\d+)\.([01])\.(lif|conv|bn)$")
_HEAD_OUT = re.compile(r"(cv[23])\.(\d+)\.2\.(lif|conv)$")
_LAYER = re.compile(r"model\.(\d+)\.(?:(\d+)\.)?(.+)$")


def _head_module(path: str) -> str | None:
    if path == "dfl.conv":
        return "dfl.conv"
    m = _HEAD_UNIT.match(path)
    if m:
        return f"{m[1]}.{m[2]}.{m[3]}.{_UNIT[m[4]]}"
    m = _HEAD_OUT.match(path)
    if m:  # SpikeConvWithoutBN: lif -> conv (bias), spikedet's SpikingConv without a norm
        return f"{m[1]}.{m[2]}.2.{'neuron' if m[3] == 'lif' else 'body'}"
    return None


def block_module(path: str, block: str) -> str | None:
    """spikedet's module path for their module ``path`` inside a block of type ``block`` (None: unused)."""
    if block == "SpikeDetect":
        if path in UNUSED_MODULES:
            return None
        found = _head_module(path)
    else:
        found = BLOCK_MODULES.get(block, {}).get(path)
    if found is None:
        raise SpikedetError(f"SpikeYOLO import: no spikedet counterpart for module {path!r} of a {block}")
    return found


def spikedet_name(name: str, block: str, *, tensor: bool | None = None) -> str | None:
    """spikedet's name for their module or tensor ``name`` (``model.<i>[.<j>].<path>``) in a ``block``-type layer.

    ``tensor``: whether the last component is a tensor (``weight``, ``running_mean`` ...); by default a name
    whose module path is not in the block's map is taken as a tensor. Returns None for their unused modules.
    """
    m = _LAYER.match(name)
    if m is None:
        raise SpikedetError(f"SpikeYOLO import: unexpected module name {name!r}")
    layer, repeat, rest = m[1], m[2], m[3]
    prefix = f"model.{layer}." + (f"{repeat}." if repeat is not None else "")
    if tensor is None:
        tensor = not _is_module(rest, block)
    if tensor:
        path, _, leaf = rest.rpartition(".")
        ours = block_module(path, block)
        return None if ours is None else f"{prefix}{ours}.{leaf}"
    ours = block_module(rest, block)
    return None if ours is None else prefix + ours


def _is_module(path: str, block: str) -> bool:
    if block == "SpikeDetect":
        return path in UNUSED_MODULES or _head_module(path) is not None
    return path in BLOCK_MODULES.get(block, {})
