"""Load Ultralytics' official YOLOv5 (v6.x) checkpoints without the yolov5 repository's code.

A YOLOv5 ``.pt`` is a torch zip archive whose pickle names the yolov5 repo's classes (``models.yolo.Model``,
``models.common.C3`` ...) and a few ``torch.nn`` modules. Unpickling it normally would import (and run)
that code. Here a restricted unpickler maps exactly the classes such a checkpoint needs to inert
stand-ins that only record their pickled state (tensors and hyperparameters); any other global is
refused with :class:`pickle.UnpicklingError`, so a hostile file cannot run code (``os.system`` ...).

:func:`load_yolov5_checkpoint` then builds ``models/yolov5n.yaml`` with spikedet's builder and copies the
checkpoint's tensors into it, checking module order, names, shapes and hyperparameters on the way: every
parameter and BatchNorm buffer of the new model is assigned exactly once, or the load fails.

The checkpoints are Ultralytics' (AGPL-3.0); see ``weights/SOURCE-yolov5n.md``.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikedet.errors import SpikedetError

__all__ = [
    "RESTRICTED_PICKLE",
    "ModuleStub",
    "RestrictedUnpickler",
    "Yolov5ImportError",
    "load_yolov5_checkpoint",
    "read_yolov5_checkpoint",
    "restricted_loads",
]


class Yolov5ImportError(SpikedetError):
    """The checkpoint is not a YOLOv5 model that matches the spikedet model config."""


# --------------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------------


class ModuleStub:
    """Inert stand-in for a module class named in a checkpoint: it keeps the pickled state and runs no code.

    ``source`` is the class's original dotted name, ``state`` the dict the pickle restored (for an
    ``nn.Module``: ``_parameters``, ``_buffers``, ``_modules`` and its plain attributes).
    """

    source = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):  # (dict, slots) form
            state = {**(state[0] or {}), **state[1]}
        self.state = state if isinstance(state, dict) else {"_state": state}

    # -- nn.Module-like read access ---------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    @property
    def children(self) -> dict[str, "ModuleStub"]:
        return {k: v for k, v in (self.state.get("_modules") or {}).items() if v is not None}

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "ModuleStub"]]:
        yield prefix, self
        for name, child in self.children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def state_items(self, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` in ``nn.Module.state_dict`` order: own parameters, own persistent buffers, children."""
        for name, t in (self.state.get("_parameters") or {}).items():
            if t is not None:
                yield prefix + name, t
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for name, t in (self.state.get("_buffers") or {}).items():
            if t is not None and name not in skip:
                yield prefix + name, t
        for name, child in self.children.items():
            yield from child.state_items(f"{prefix}{name}.")

    def __repr__(self) -> str:
        return f"<stub of {self.source}>"


def _stub_class(source: str) -> type[ModuleStub]:
    return type(source.rsplit(".", 1)[-1] + "Stub", (ModuleStub,), {"source": source, "__module__": __name__})


_STUBBED = (
    "models.yolo.Model",
    "models.yolo.Detect",
    "models.common.Conv",
    "models.common.C3",
    "models.common.Bottleneck",
    "models.common.SPPF",
    "models.common.Concat",
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.activation.SiLU",
    "torch.nn.modules.pooling.MaxPool2d",
    "torch.nn.modules.upsampling.Upsample",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
)
STUBS: dict[str, type[ModuleStub]] = {name: _stub_class(name) for name in _STUBBED}

# Real objects a checkpoint may build: plain containers and torch's own tensor/parameter rebuilders.
_REAL: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set,
    "__builtin__.set": set,  # protocol-2 pickles spell builtins the Python 2 way
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a YOLOv5 v6 checkpoint needs.

    YOLOv5 and ``torch.nn`` module classes become :class:`ModuleStub` subclasses; ``OrderedDict``,
    ``set`` and torch's tensor rebuilders are the real ones; everything else raises
    :class:`pickle.UnpicklingError` naming the refused global. (Under :func:`torch.load`, storage
    classes such as ``torch.HalfStorage`` are resolved by torch before this method is asked.)
    """

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in STUBS:
            return STUBS[key]
        if key in _REAL:
            return _REAL[key]
        raise pickle.UnpicklingError(
            f"refusing to load global {key!r}: not one of the classes a YOLOv5 checkpoint may reference"
        )


def _restricted_load(file, **kwargs) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


def restricted_loads(data: bytes, **kwargs) -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler`."""
    return _restricted_load(io.BytesIO(data), **kwargs)


# A module-like object for ``torch.load(..., pickle_module=RESTRICTED_PICKLE)``.
RESTRICTED_PICKLE = types.ModuleType("spikedet_restricted_pickle", "pickle, restricted to YOLOv5 checkpoint globals")
RESTRICTED_PICKLE.Unpickler = RestrictedUnpickler
RESTRICTED_PICKLE.load = _restricted_load
RESTRICTED_PICKLE.loads = restricted_loads
RESTRICTED_PICKLE.UnpicklingError = pickle.UnpicklingError
RESTRICTED_PICKLE.__version__ = "1"


def is_yolov5_checkpoint(path: str | Path) -> bool:
    """True if ``path`` is a torch zip checkpoint pickling the yolov5 repository's ``models.yolo`` classes.

    Reads the pickle's bytes only (nothing is unpickled)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            return name is not None and b"models.yolo" in z.read(name)
    except Exception:  # noqa: BLE001 -- any unreadable archive (bad deflate data, encryption, ...) is not one;
        return False  # the normal loading path then reports it in one line


def read_yolov5_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a YOLOv5 ``.pt``, its modules as :class:`ModuleStub` objects (tensors as stored)."""
    path = Path(path)
    if not path.is_file():
        raise Yolov5ImportError(f"YOLOv5 checkpoint {str(path)!r} not found")
    ckpt = torch.load(path, map_location="cpu", pickle_module=RESTRICTED_PICKLE, weights_only=False)
    if not isinstance(ckpt, dict):
        raise Yolov5ImportError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt


# --------------------------------------------------------------------------------------------------------
# Building the spikedet model and copying the weights
# --------------------------------------------------------------------------------------------------------

# YOLOv5 layer type -> spikedet block name (per top-level layer).
_LAYER_TYPES = {
    "models.common.Conv": "V5Conv",
    "models.common.C3": "C3",
    "models.common.SPPF": "SPPF",
    "models.common.Concat": "V5Concat",
    "torch.nn.modules.upsampling.Upsample": "V5Upsample",
    "models.yolo.Detect": "V5Detect",
}
# Tensors whose name differs between YOLOv5 and spikedet (relative to the head).
_RENAMED = {"anchors": "anchor_px"}


def _fail(msg: str) -> None:
    raise Yolov5ImportError(f"YOLOv5 import: {msg}")


def _pair(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def _source_model(ckpt: dict) -> ModuleStub:
    src = ckpt.get("ema") or ckpt.get("model")  # YOLOv5's own loader prefers the EMA weights
    if not isinstance(src, ModuleStub) or src.source != "models.yolo.Model":
        _fail(f"the checkpoint's 'model' is {src!r}, not a YOLOv5 models.yolo.Model")
    return src


def _check_config(src: ModuleStub, model) -> None:
    """The checkpoint's own model description against the spikedet config that was built."""
    from spikedet.builder import scale_values

    src_yaml = src.get("yaml") or {}
    cfg = model.yaml
    values = scale_values(cfg)
    for key, mine in (("depth_multiple", values["depth"]), ("width_multiple", values["width"])):  # nc: built from it
        theirs = src_yaml.get(key)
        if theirs is not None and not math.isclose(float(theirs), float(mine)):
            _fail(f"checkpoint {key}={theirs} but the model config has {mine}")
    theirs = src_yaml.get("anchors")
    mine = model.model[-1].anchor_px.flatten(1).tolist()
    if theirs is not None and [list(map(float, a)) for a in theirs] != mine:
        _fail(f"checkpoint anchors {theirs} differ from the model config's {mine}")

    layers = src.children.get("model")
    if layers is None:
        _fail("the checkpoint model has no 'model' layer list")
    src_layers = list(layers.children.values())
    if len(src_layers) != len(model.model):
        _fail(f"the checkpoint has {len(src_layers)} layers, the model config {len(model.model)}")
    for i, (theirs, mine) in enumerate(zip(src_layers, model.model)):
        expected = _LAYER_TYPES.get(theirs.source)
        if expected != mine.type:
            _fail(f"layer {i} is {theirs.source} in the checkpoint but {mine.type} in the model config")
        if theirs.get("f") is not None and theirs.get("f") != mine.f:
            _fail(f"layer {i} takes input from {theirs.get('f')} in the checkpoint but {mine.f} in the model config")


def _check_modules(src: ModuleStub, model: nn.Module) -> None:
    """Hyperparameters of corresponding modules (same dotted name) that shape the computation."""
    from spikedet.nn.yolov5 import SPPF, Bottleneck, V5Conv, V5Detect, V5Upsample

    stubs = dict(src.named_modules())
    for name, mine in model.named_modules():
        if not isinstance(mine, (nn.Conv2d, nn.BatchNorm2d, V5Conv, Bottleneck, SPPF, V5Upsample, V5Detect)):
            continue
        theirs = stubs.get(name)
        if theirs is None:
            _fail(f"module {name} ({type(mine).__name__}) has no counterpart in the checkpoint")
        if isinstance(mine, nn.Conv2d):
            for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
                want, got = theirs.get(attr), getattr(mine, attr)
                if attr in ("kernel_size", "stride", "padding", "dilation"):
                    want = _pair(want)
                if want != got:
                    _fail(f"{name}.{attr} is {want} in the checkpoint but {got} in the model")
        elif isinstance(mine, nn.BatchNorm2d):
            if theirs.get("num_features") != mine.num_features or not theirs.get("affine", True):
                _fail(f"{name}: BatchNorm2d({theirs.get('num_features')}) does not match {mine}")
        elif isinstance(mine, V5Conv):
            act = theirs.children.get("act")
            if act is None or act.source != "torch.nn.modules.activation.SiLU" or not isinstance(mine.act, nn.SiLU):
                _fail(f"{name}: activation {act!r} in the checkpoint, {type(mine.act).__name__} in the model")
        elif isinstance(mine, Bottleneck):
            if bool(theirs.get("add")) != mine.add:
                _fail(f"{name}: shortcut {theirs.get('add')} in the checkpoint but {mine.add} in the model")
        elif isinstance(mine, SPPF):
            pool = theirs.children.get("m")
            if pool is None or _pair(pool.get("kernel_size")) != (mine.k, mine.k) or _pair(pool.get("stride")) != (1, 1):
                _fail(f"{name}: max-pool {pool and pool.state} does not match k={mine.k}, stride 1")
        elif isinstance(mine, V5Upsample):
            scale, mode = theirs.get("scale_factor"), theirs.get("mode")
            if float(scale or 0) != mine.scale or mode != "nearest":
                _fail(f"{name}: upsampling x{scale} {mode} in the checkpoint, x{mine.scale} nearest in the model")
        elif isinstance(mine, V5Detect):
            if (theirs.get("nc"), theirs.get("na"), theirs.get("nl")) != (mine.nc, mine.na, mine.nl):
                _fail(f"{name}: head nc/na/nl {theirs.get('nc'), theirs.get('na'), theirs.get('nl')} vs {mine.nc, mine.na, mine.nl}")
            stride = theirs.get("stride")
            if stride is None or stride.float().tolist() != mine.stride.float().tolist():
                _fail(f"{name}: strides {stride} in the checkpoint but {mine.stride.tolist()} in the model")


@torch.no_grad()
def _copy_tensors(src: ModuleStub, model: nn.Module) -> int:
    """Copy the checkpoint's tensors into ``model`` in state-dict order; returns the number of tensors copied.

    The two sequences must agree entry by entry in name and shape; each parameter and buffer of the model
    is written exactly once. YOLOv5 stores the head's anchors in units of each level's stride; the model
    keeps them in pixels.
    """
    theirs = list(src.state_items())
    mine = list(model.state_dict(keep_vars=True).items())
    head_prefix = f"model.{len(model.model) - 1}."
    if len(theirs) != len(mine):
        _fail(f"the checkpoint holds {len(theirs)} tensors, the model {len(mine)}")
    head = model.model[-1]
    assigned: dict[int, str] = {}
    for (src_name, src_t), (dst_name, dst_t) in zip(theirs, mine):
        expected = src_name
        if src_name.startswith(head_prefix):
            rest = src_name[len(head_prefix):]
            expected = head_prefix + _RENAMED.get(rest, rest)
        if expected != dst_name:
            _fail(f"tensor order differs: checkpoint {src_name} meets model {dst_name}")
        if not isinstance(src_t, torch.Tensor) or tuple(src_t.shape) != tuple(dst_t.shape):
            _fail(f"{dst_name}: shape {tuple(getattr(src_t, 'shape', ()))} in the checkpoint, {tuple(dst_t.shape)} in the model")
        key = id(dst_t)
        if key in assigned:
            _fail(f"{dst_name} shares its tensor with {assigned[key]}: it would be assigned twice")
        value = src_t.detach()
        if dst_name == head_prefix + "anchor_px":
            value = value.float() * head.stride.float().view(-1, 1, 1)
            if not torch.allclose(value, dst_t.float(), atol=1e-3):
                _fail(f"checkpoint anchors {value.flatten(1).tolist()} px differ from the config's {dst_t.flatten(1).tolist()}")
        dst_t.copy_(value.to(dst_t.dtype))  # fp16 -> fp32 (int64 stays int64)
        assigned[key] = dst_name
    every = {id(t): n for n, t in model.state_dict(keep_vars=True).items()}
    every.update({id(p): n for n, p in model.named_parameters()})
    every.update({id(b): n for n, b in model.named_buffers()})
    missing = sorted(n for k, n in every.items() if k not in assigned)
    if missing:
        _fail(f"tensors left unassigned: {missing}")
    return len(assigned)


def _copy_bn_settings(src: ModuleStub, model: nn.Module) -> None:
    stubs = dict(src.named_modules())
    for name, bn in model.named_modules():
        if isinstance(bn, nn.BatchNorm2d):
            theirs = stubs[name]
            bn.eps = float(theirs.get("eps", bn.eps))
            bn.momentum = theirs.get("momentum", bn.momentum)


def load_yolov5_checkpoint(path: str | Path | None = None, cfg: str | Path | dict = "yolov5n.yaml", verbose: bool = False):
    """Build ``cfg`` with spikedet's builder and load an official YOLOv5 v6 checkpoint into it.

    ``path`` defaults to the shipped ``weights/yolov5n.pt``.

    Returns a :class:`~spikedet.model.SpikeDetectionModel` in eval mode (fp32), with the checkpoint's class
    names. Raises :class:`Yolov5ImportError` when the checkpoint does not match the config and
    :class:`pickle.UnpicklingError` when it references anything but YOLOv5's module classes.
    """
    from spikedet.assets import asset_dir
    from spikedet.model import SpikeDetectionModel

    if path is None:
        path = asset_dir("weights") / "yolov5n.pt"
    ckpt = read_yolov5_checkpoint(path)
    src = _source_model(ckpt)
    src_yaml = src.get("yaml") or {}
    names = src.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        _fail(f"the checkpoint model has no class names (got {names!r})")
    nc = int(src_yaml.get("nc", len(names)))
    if len(names) != nc:
        _fail(f"the checkpoint has {len(names)} class names for nc={nc}")

    model = SpikeDetectionModel(cfg, nc=nc, verbose=verbose)
    _check_config(src, model)
    _check_modules(src, model)
    _copy_tensors(src, model)
    _copy_bn_settings(src, model)
    model.names = {int(k): str(v) for k, v in names.items()}
    model.yolov5_source = {
        "file": Path(path).name,
        "date": ckpt.get("date"),
        "epoch": ckpt.get("epoch"),
        "weights": "ema" if ckpt.get("ema") is not None else "model",
    }
    return model.eval()
