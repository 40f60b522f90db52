"""Load SpikeYOLO checkpoints (BICLab/SpikeYOLO, ECCV 2024) without their code.

A SpikeYOLO ``.pt`` is what their trainer (a fork of Ultralytics 8.0.197) writes: a torch zip archive whose
pickle names their classes (``ultralytics.nn.modules.yolo_spikformer.MS_ConvBlock`` ...), ``torch.nn``
modules and two names that also exist in today's Ultralytics (``ultralytics.nn.tasks.DetectionModel``,
``ultralytics.utils.IterableSimpleNamespace``). :class:`SpikeYoloUnpickler` maps every one of them to an inert
stand-in that only records the pickled state -- never to a live class -- and refuses every other global, so
the file runs no code.

:func:`load_spikeyolo_checkpoint` then reads the network from the file itself: layer types and ``from``
indices from the pickled modules, channels, repeats, expansion ratios and kernels from the tensor shapes
(any width: not only the named scales), strides and padding from the pickled convs, T from ``MS_GetT``,
the neuron's range D from its quantizer class (``MultiSpike4``: I-LIF, D = 4), BatchNorm eps and momentum
from the pickled BNs (1e-3 and 0.03 in their runs), class names and nc from the model. It builds that
network with spikedet's SpikeYOLO blocks and copies every tensor through the one name map
(:mod:`spikedet.io.spikeyolo_names`), checking each conv's and BN's hyperparameters on the way; every
parameter and buffer of the new model is written exactly once. Like their loader it prefers ``ema`` over
``model``.

Two kinds of SpikeYOLO checkpoints cannot be represented and are refused in one line naming the kind:
the Gen1 event-camera models (T = 2, SpikingJelly's ``MultiStepLIFNode``) and the binary-inference variant
(``yolo_spikformer_bin``).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

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
from spikedet.io.spikeyolo_names import LAYERS, spikedet_name
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.layers import BNPad
from spikedet.snn.neurons import SpikingNeuron

__all__ = [
    "SpikeYoloImport",
    "SpikeYoloImportError",
    "SpikeYoloUnpickler",
    "import_spikeyolo",
    "load_spikeyolo_checkpoint",
    "read_spikeyolo_checkpoint",
    "refuse_unsupported",
    "spikeyolo_kind",
]

THEIRS = "ultralytics.nn.modules.yolo_spikformer"
#: Their quantizers: ``round(clamp(U, 0, D))``, i.e. spikedet's I-LIF with that D.
QUANTIZERS = {f"{THEIRS}.MultiSpike{d}": d for d in (1, 2, 4, 8)}
_THEIR_CLASSES = ("BNAndPadLayer", "MS_AllConvBlock", "MS_ConvBlock", "MS_DownSampling", "MS_GetT", "MS_StandardConv",
                  "RepConv", "SepConv", "SepRepConv", "SpikeConv", "SpikeConvWithoutBN", "SpikeDFL", "SpikeDetect",
                  "SpikeSPPF", "mem_update")
_STUBBED = (
    *(f"{THEIRS}.{c}" for c in _THEIR_CLASSES),
    *QUANTIZERS,
    "ultralytics.nn.modules.conv.Concat",
    "ultralytics.nn.tasks.DetectionModel",
    "ultralytics.utils.IterableSimpleNamespace",
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.pooling.MaxPool2d",
    "torch.nn.modules.upsampling.Upsample",
    # numpy scalars in a training run's metrics (best_fitness): recorded, never rebuilt
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
)

_BACKBONE_ROWS = 10
#: Named scales of their YAML (depth, width): a checkpoint of another width loads as well, as "custom".
SCALES = {"n": (0.33, 0.375), "s": (0.33, 0.5), "m": (0.5, 0.625), "l": (0.5, 0.75)}


class SpikeYoloImportError(SpikedetError):
    """The file is not a SpikeYOLO checkpoint spikedet can represent."""


def _fail(msg: str):
    raise SpikeYoloImportError(f"SpikeYOLO import: {msg}")


class SpikeYoloUnpickler(RestrictedUnpickler):
    """Resolves only what a SpikeYOLO (COCO) checkpoint names: their classes, ``torch.nn`` containers and layers
    and Ultralytics' ``DetectionModel``/``IterableSimpleNamespace`` all become inert stubs."""

    stubs = stub_classes(_STUBBED)
    what = "a SpikeYOLO checkpoint"
    extra_globals = {"_codecs.encode": codecs.encode}  # how protocol 2 spells bytes (numpy scalars in run metrics)


RESTRICTED_PICKLE = pickle_module(SpikeYoloUnpickler)


def spikeyolo_kind(path: str | Path) -> str | None:
    """Which SpikeYOLO checkpoint ``path`` is, from the names its pickle holds (nothing is unpickled).

    ``"coco"`` (loadable), ``"gen1"`` (event-camera models on SpikingJelly's LIF), ``"binary"`` (the
    binary-inference variant), or None when the file is no SpikeYOLO checkpoint.
    """
    data = pickle_bytes(path)
    if data is None:
        return None
    if b"yolo_spikformer_bin" in data:
        return "binary"
    spikingjelly = b"spikingjelly" in data or b"MultiStepLIFNode" in data
    if spikingjelly and (b"yolo_spikformer" in data or b"ultralytics" in data):
        return "gen1"
    return "coco" if b"yolo_spikformer" in data else None


_REFUSED = {
    "gen1": "a SpikeYOLO Gen1 (event camera, T=2, SpikingJelly MultiStepLIFNode) checkpoint, which spikedet "
            "cannot represent yet (binary LIF spikes with T=2 dynamics, not I-LIF)",
    "binary": "a SpikeYOLO binary-inference (yolo_spikformer_bin) checkpoint, which spikedet cannot represent "
              "yet (its network drops the re-parameterized convs); load the integer-trained checkpoint instead",
}


def refuse_unsupported(path: str | Path, kind: str | None = None) -> None:
    """Raise :class:`SpikeYoloImportError` (one line, naming the kind) for a SpikeYOLO checkpoint spikedet cannot
    represent: Gen1 or binary-inference. Reads the pickle's bytes only (unless its ``kind`` is known)."""
    kind = spikeyolo_kind(path) if kind is None else kind
    if kind in _REFUSED:
        raise SpikeYoloImportError(f"{str(path)!r} is {_REFUSED[kind]}")


def read_spikeyolo_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a SpikeYOLO ``.pt``, its modules as :class:`ModuleStub` objects (tensors as stored);
    a corrupt or foreign file is one line."""
    path = Path(path)
    if path.is_file():
        kind = spikeyolo_kind(path)
        refuse_unsupported(path, kind)
        if kind is None:
            _fail(f"{str(path)!r} is not a SpikeYOLO checkpoint (its pickle names no {THEIRS} class)")
    return read_checkpoint(path, RESTRICTED_PICKLE, _fail)


# -- reading the network from the file ----------------------------------------------------------------

def _short(stub) -> str:
    return stub.source.rsplit(".", 1)[-1] if isinstance(stub, ModuleStub) else type(stub).__name__


def _layer_type(stub: ModuleStub) -> str:
    """The block type of a top-level layer (a ``Sequential`` of repeats carries it in ``type``)."""
    return str(stub.get("type") or stub.source).rsplit(".", 1)[-1]


def _tensor(stub: ModuleStub, dotted: str) -> torch.Tensor:
    module, _, leaf = dotted.rpartition(".")
    node = stub
    for part in module.split(".") if module else ():
        node = node.children.get(part)
        if node is None:
            _fail(f"module {dotted!r} missing in a {_short(stub)}")
    t = (node.get("_parameters") or {}).get(leaf)
    if t is None:
        t = (node.get("_buffers") or {}).get(leaf)
    if not isinstance(t, torch.Tensor):
        _fail(f"tensor {dotted!r} missing in a {_short(stub)}")
    return t


def _conv(stub: ModuleStub, dotted: str) -> ModuleStub:
    node = stub
    for part in dotted.split("."):
        node = node.children.get(part)
        if node is None:
            _fail(f"module {dotted!r} missing in a {_short(stub)}")
    return node



def _repeats(stub: ModuleStub, kind: str) -> list[ModuleStub]:
    if stub.source.endswith("container.Sequential"):
        blocks = list(stub.children.values())
        if not blocks or any(_short(b) != kind for b in blocks):
            _fail(f"layer {stub.get('i')}: a Sequential that is not a repeat of {kind}")
        return blocks
    return [stub]


def _ratio(out_ch: int, dim: int, layer: int) -> int:
    if out_ch % dim:
        _fail(f"layer {layer}: expansion {out_ch}/{dim} is not a whole number")
    return out_ch // dim


def _row(i: int, stub: ModuleStub) -> list:
    """spikedet's YAML row ``[from, repeats, block, args]`` for their layer ``i`` (channels before width 1.0)."""
    kind, source = _layer_type(stub), stub.get("f")
    if kind == "MS_GetT":
        return [source, 1, "TimeRepeat", []]
    if kind == "MS_DownSampling":
        conv = _conv(stub, "encode_conv")
        c2, _, k, _ = _tensor(stub, "encode_conv.weight").shape
        first = "encode_lif" not in stub.children
        return [source, 1, "DownSampling", [int(c2), int(k), pair(conv.get("stride"))[0], pair(conv.get("padding"))[0], first]]
    if kind in ("MS_AllConvBlock", "MS_ConvBlock"):
        blocks = _repeats(stub, kind)
        conv1 = "conv1.conv.weight" if kind == "MS_AllConvBlock" else "conv1.body.2.1.weight"
        ratios = {_ratio(_tensor(b, conv1).shape[0], _tensor(b, "Conv.pwconv1.weight").shape[1], i) for b in blocks}
        kernels = {int(_tensor(b, "Conv.dwconv2.weight").shape[-1]) for b in blocks}
        expansions = {_ratio(*_tensor(b, "Conv.pwconv1.weight").shape[:2], i) for b in blocks}
        if len(ratios) != 1 or len(kernels) != 1 or expansions != {2}:
            _fail(f"layer {i}: repeated {kind} blocks differ (ratios {ratios}, kernels {kernels}, SepConv expansion {expansions})")
        name = "AllConvBlock" if kind == "MS_AllConvBlock" else "ConvBlock"
        return [source, len(blocks), name, [ratios.pop(), kernels.pop()]]
    if kind == "SpikeSPPF":
        pool = stub.children.get("m")
        k = pair(pool.get("kernel_size"))[0] if pool is not None else None
        if pool is None or pair(pool.get("stride"))[0] != 1 or pair(pool.get("padding"))[0] != k // 2:
            _fail(f"layer {i}: SpikeSPPF max-pool {pool and pool.state} is not k, stride 1, padding k//2")
        return [source, 1, "SpikeSPPF", [int(_tensor(stub, "cv2.conv.weight").shape[0]), int(k)]]
    if kind == "MS_StandardConv":
        c2, _, k, _ = _tensor(stub, "conv.weight").shape
        return [source, 1, "StandardConv", [int(c2), int(k), pair(_conv(stub, "conv").get("stride"))[0]]]
    if kind == "Upsample":
        scale = tuple(float(s) for s in (stub.get("scale_factor") or ()))
        if stub.get("mode") != "nearest" or len(scale) != 3 or scale[0] != 1 or scale[1] != scale[2] or scale[1] % 1:
            _fail(f"layer {i}: upsampling {stub.get('scale_factor')} {stub.get('mode')} is not a nearest (1, s, s)")
        return [source, 1, "SpikeUpsample", [int(scale[1])]]
    if kind == "Concat":
        if stub.get("d") != 2:
            _fail(f"layer {i}: Concat along dim {stub.get('d')}, not the channels of [T, B, C, H, W] (2)")
        return [source, 1, "SpikeConcat", []]
    if kind == "SpikeDetect":
        return [source, 1, "SpikeDetect", [int(stub.get("nc")), int(stub.get("reg_max", 16))]]
    _fail(f"layer {i}: unknown layer type {kind}")


def _time_steps(layers: list[ModuleStub]) -> int:
    T = layers[0].get("T")
    if not isinstance(T, int) or T < 1:
        _fail(f"MS_GetT holds T={T!r}")
    return T


def _neuron_range(src: ModuleStub) -> int:
    quantizers = set()
    for name, m in src.named_modules():
        if m.source == f"{THEIRS}.mem_update":
            q = m.children.get("qtrick")
            quantizers.add(q.source if q is not None else None)
    unknown = quantizers - set(QUANTIZERS)
    if unknown or len(quantizers) != 1:
        _fail(f"neurons use quantizers {sorted(map(str, quantizers))}; spikedet reads one of {sorted(QUANTIZERS)}")
    return QUANTIZERS[quantizers.pop()]


def _batchnorm(src: ModuleStub) -> dict:
    settings = {(float(m.get("eps")), m.get("momentum")) for _, m in src.named_modules()
                if m.source.endswith("batchnorm.BatchNorm2d")}
    if len(settings) != 1:
        _fail(f"BatchNorm layers use different eps/momentum {sorted(settings)}; spikedet keeps one setting per model")
    eps, momentum = settings.pop()
    return {"eps": eps, "momentum": momentum}


def _scale_name(rows: list[list]) -> str | None:
    """The named scale whose channels and repeats the rows have, else None (a custom width)."""
    for name, (depth, width) in SCALES.items():
        channels = [int(c * width) for c in (128, 256, 512, 1024)]
        repeats = [max(round(n * depth), 1) for n in (3, 6, 9, 3)]
        if [rows[i][3][0] for i in (1, 3, 5, 7)] == channels and [rows[i][1] for i in (2, 4, 6, 8)] == repeats:
            return name
    return None


def model_config(src: ModuleStub, source: str = "") -> dict:
    """The spikedet model config (a YAML dict) of their model ``src``, read from its modules and tensor shapes."""
    layers_stub = src.children.get("model")
    layers = list(layers_stub.children.values()) if layers_stub is not None else []
    if len(layers) != len(LAYERS):
        _fail(f"the model has {len(layers)} layers; SpikeYOLO's snn_yolov8 network has {len(LAYERS)}")
    for i, (stub, (kind, source_)) in enumerate(zip(layers, LAYERS)):
        if _layer_type(stub) != kind or stub.get("f") != source_:
            _fail(f"layer {i} is {_layer_type(stub)} from {stub.get('f')}; SpikeYOLO's network has {kind} from {source_}")
    rows = [_row(i, stub) for i, stub in enumerate(layers)]
    T, D = _time_steps(layers), _neuron_range(src)
    width = rows[1][3][0] / 128
    return {
        "nc": rows[-1][3][0],
        "depth_multiple": 1.0,
        "width_multiple": 1.0,
        "neuron": {"type": "ILIF", "D": D, "T": T, "alpha": 0.25},
        "batchnorm": _batchnorm(src),
        "backbone": rows[:_BACKBONE_ROWS],
        "head": rows[_BACKBONE_ROWS:],
        "scale": _scale_name(rows),
        "yaml_file": "spikeyolo-import.yaml",
        "spikeyolo": {"width": width, "source": source},
    }


# -- copying tensors and checking hyperparameters ------------------------------------------------------

def _their_modules(src: ModuleStub) -> dict[str, tuple[ModuleStub, str]]:
    """Every module of theirs below a top-level layer, with the layer's block type."""
    out = {}
    for i, layer in (src.children.get("model").children or {}).items():
        kind = _layer_type(layer)
        for name, m in layer.named_modules(f"model.{i}"):
            out[name] = (m, kind)
    return out


def _check_module(name: str, theirs: ModuleStub, mine: nn.Module) -> None:
    if theirs.source.endswith("conv.Conv2d"):
        if not isinstance(mine, nn.Conv2d):
            _fail(f"{name} is a Conv2d in the checkpoint but a {type(mine).__name__} in spikedet")
        problem = conv_mismatch(theirs, mine, "spikedet's block")
        if problem:
            _fail(f"{name}.{problem}")
        if theirs.get("padding_mode", "zeros") != "zeros":
            _fail(f"{name}: padding mode {theirs.get('padding_mode')!r}")
    elif theirs.source.endswith("batchnorm.BatchNorm2d"):
        if not isinstance(mine, nn.BatchNorm2d) or not theirs.get("affine", True) or not theirs.get("track_running_stats", True):
            _fail(f"{name}: BatchNorm2d({theirs.get('num_features')}) does not match {mine}")
    elif theirs.source.endswith("BNAndPadLayer"):
        if not isinstance(mine, BNPad) or theirs.get("pad_pixels") != mine.pad:
            _fail(f"{name}: BNAndPadLayer(pad {theirs.get('pad_pixels')}) does not match {mine}")
    elif theirs.source.endswith("mem_update") and not isinstance(mine, SpikingNeuron):
        _fail(f"{name} is a neuron in the checkpoint but a {type(mine).__name__} in spikedet")


@torch.no_grad()
def _copy(src: ModuleStub, model: SpikeDetectionModel) -> dict[str, str]:
    """Copy every tensor of ``src`` into ``model`` through the name map; returns their neuron name -> spikedet's."""
    ours = dict(model.state_dict(keep_vars=True))
    modules = dict(model.named_modules())
    theirs = _their_modules(src)
    assigned: dict[str, str] = {}
    for their_name, tensor in src.children["model"].state_items("model."):
        kind = theirs[their_name.rpartition(".")[0]][1]
        mine = spikedet_name(their_name, kind, tensor=True)
        if mine is None:
            continue
        if mine not in ours:
            _fail(f"{their_name} maps to {mine}, which spikedet's model does not have")
        if mine in assigned:
            _fail(f"{mine} would be written twice ({assigned[mine]} and {their_name})")
        if tuple(tensor.shape) != tuple(ours[mine].shape):
            _fail(f"{their_name}: shape {tuple(tensor.shape)} in the checkpoint, {tuple(ours[mine].shape)} in spikedet ({mine})")
        ours[mine].copy_(tensor.detach().to(ours[mine].dtype))
        assigned[mine] = their_name
    missing = sorted(set(ours) - set(assigned))
    if missing:
        _fail(f"spikedet tensors left without a value: {missing[:5]}")
    neurons = {}
    for their_name, (stub, kind) in theirs.items():
        if stub.source.endswith(("Conv2d", "BatchNorm2d", "BNAndPadLayer", "mem_update")) and their_name.count("."):
            mine = spikedet_name(their_name, kind, tensor=False)
            if mine is None:
                continue
            if mine not in modules:
                _fail(f"{their_name} maps to {mine}, which spikedet's model does not have")
            _check_module(their_name, stub, modules[mine])
            if stub.source.endswith("mem_update"):
                neurons[their_name] = mine
    model_neurons = {n for n, m in modules.items() if isinstance(m, SpikingNeuron)}
    if set(neurons.values()) != model_neurons:
        _fail(f"neurons without a counterpart: {sorted(model_neurons - set(neurons.values()))[:5]}")
    return neurons


def _names(src: ModuleStub, nc: int) -> dict[int, str]:
    names = src.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or len(names) != nc:
        _fail(f"the model's class names {names!r:.80} do not give nc={nc} names")
    return {int(k): str(v) for k, v in names.items()}


@dataclass
class SpikeYoloImport:
    """A SpikeYOLO checkpoint loaded into spikedet, with what was read from the file."""

    model: SpikeDetectionModel
    entry: str  # "ema" or "model": which of the checkpoint's models was loaded
    scale: str | None
    width: float
    T: int
    D: int
    batchnorm: dict
    tensors: int
    neurons: dict[str, str] = field(repr=False)  # their neuron layer -> spikedet's
    version: str | None = None
    epoch: int | None = None

    def summary(self) -> dict:
        m = self.model
        return {
            "entry": self.entry, "scale": self.scale or "custom", "width": self.width, "T": self.T, "D": self.D,
            "neuron": "ILIF", "neuron_layers": len(self.neurons), "batchnorm": self.batchnorm,
            "tensors": self.tensors, "parameters": int(sum(p.numel() for p in m.parameters())),
            "nc": len(m.names), "stride": [int(s) for s in m.stride.tolist()],
            "version": self.version, "epoch": self.epoch,
        }


def import_spikeyolo(path: str | Path) -> SpikeYoloImport:
    """Read a SpikeYOLO checkpoint into a spikedet model (eval mode, float32), with a record of what was read."""
    path = Path(path)
    ckpt = read_spikeyolo_checkpoint(path)
    entry = "ema" if ckpt.get("ema") is not None else "model"  # their loader: ckpt.get('ema') or ckpt['model']
    src = ckpt.get(entry)
    if not isinstance(src, ModuleStub) or src.source != "ultralytics.nn.tasks.DetectionModel":
        _fail(f"the checkpoint's {entry!r} is {src!r}, not their DetectionModel")
    cfg = model_config(src, path.name)
    model = SpikeDetectionModel(cfg, verbose=False)
    neurons = _copy(src, model)
    stride = src.get("stride")
    if stride is not None and [float(s) for s in stride] != model.stride.tolist():
        _fail(f"strides {stride.tolist()} in the checkpoint, {model.stride.tolist()} in spikedet's model")
    model.names = _names(src, cfg["nc"])
    layers = src.children["model"]
    return SpikeYoloImport(
        model=model.eval(), entry=entry, scale=cfg["scale"], width=cfg["spikeyolo"]["width"],
        T=_time_steps(list(layers.children.values())), D=cfg["neuron"]["D"], batchnorm=cfg["batchnorm"],
        tensors=len(model.state_dict()), neurons=neurons, version=ckpt.get("version"),
        epoch=ckpt.get("epoch") if isinstance(ckpt.get("epoch"), int) else None,
    )


def load_spikeyolo_checkpoint(path: str | Path) -> SpikeDetectionModel:
    """The spikedet model of a SpikeYOLO checkpoint (see :func:`import_spikeyolo`)."""
    return import_spikeyolo(path).model
