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

import math
from pathlib import Path

import torch
from torch import nn

from spikedet.assets import asset_dir
from spikedet.errors import SpikedetError
from spikedet.io.restricted_pickle import (
    ModuleStub,
    RestrictedUnpickler,
    conv_mismatch,
    pair,
    pickle_bytes,
    pickle_module,
    read_checkpoint,
    stub_classes,
)
from spikedet.model.builder import scale_values
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.yolov5 import SPPF, Bottleneck, V5Conv, V5Detect, V5Upsample

__all__ = [
    "RESTRICTED_PICKLE",
    "Yolov5ImportError",
    "Yolov5Unpickler",
    "load_yolov5_checkpoint",
    "read_yolov5_checkpoint",
    "restricted_loads",
]


class Yolov5ImportError(SpikedetError):
    """The checkpoint is not a YOLOv5 model that matches the spikedet model config."""


# -- restricted unpickling ------------------------------------------------------------------------------

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


class Yolov5Unpickler(RestrictedUnpickler):
    """Resolves only what a YOLOv5 v6 checkpoint needs: YOLOv5's and ``torch.nn``'s module classes become
    :class:`~spikedet.io.restricted_pickle.ModuleStub` subclasses, plus plain containers and tensors."""

    stubs = stub_classes(_STUBBED)
    what = "a YOLOv5 checkpoint"


#: ``torch.load(..., pickle_module=RESTRICTED_PICKLE)`` reads a YOLOv5 checkpoint without running its code.
RESTRICTED_PICKLE = pickle_module(Yolov5Unpickler)
restricted_loads = Yolov5Unpickler.loads


def is_yolov5_checkpoint(path: str | Path) -> bool:
    """True if ``path`` is a torch zip checkpoint pickling the yolov5 repository's ``models.yolo`` classes.

    Reads the pickle's bytes only (nothing is unpickled)."""
    return b"models.yolo" in (pickle_bytes(path) or b"")


def read_yolov5_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a YOLOv5 ``.pt``, its modules as :class:`ModuleStub` objects (tensors as stored)."""
    return read_checkpoint(Path(path), RESTRICTED_PICKLE, _fail)


# -- building the spikedet model and copying the weights ------------------------------------------------

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



def _source_model(ckpt: dict) -> ModuleStub:
    src = ckpt.get("ema") or ckpt.get("model")  # YOLOv5's own loader prefers the EMA weights
    if not isinstance(src, ModuleStub) or src.source != "models.yolo.Model":
        _fail(f"the checkpoint's 'model' is {src!r}, not a YOLOv5 models.yolo.Model")
    return src


def _check_config(src: ModuleStub, model) -> None:
    """The checkpoint's own model description against the spikedet config that was built."""
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
    stubs = dict(src.named_modules())
    for name, mine in model.named_modules():
        if not isinstance(mine, (nn.Conv2d, nn.BatchNorm2d, V5Conv, Bottleneck, SPPF, V5Upsample, V5Detect)):
            continue
        theirs = stubs.get(name)
        if theirs is None:
            _fail(f"module {name} ({type(mine).__name__}) has no counterpart in the checkpoint")
        if isinstance(mine, nn.Conv2d):
            problem = conv_mismatch(theirs, mine, "the model")
            if problem:
                _fail(f"{name}.{problem}")
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
            if pool is None or pair(pool.get("kernel_size")) != (mine.k, mine.k) or pair(pool.get("stride")) != (1, 1):
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


def load_yolov5_checkpoint(path: str | Path | None = None, cfg: str | Path | dict = "yolov5n.yaml",
                           verbose: bool = False) -> SpikeDetectionModel:
    """Build ``cfg`` with spikedet's builder and load an official YOLOv5 v6 checkpoint into it.

    ``path`` defaults to the shipped ``weights/yolov5n.pt``.

    Returns a :class:`~spikedet.model.detection.SpikeDetectionModel` in eval mode (fp32), with the checkpoint's class
    names. Raises :class:`Yolov5ImportError` when the checkpoint does not match the config and
    :class:`pickle.UnpicklingError` when it references anything but YOLOv5's module classes.
    """
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
    return model.eval()
