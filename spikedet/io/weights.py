"""Loading and saving models: the one loader, :func:`load_model`.

What a model name can be (resolved by :func:`spikedet.assets.resolve_weights`: a path, a file in
``weights/``, or, for None, ``$SPIKEDET_WEIGHTS`` else the shipped default):

- a model YAML (``spikeyolo-s.yaml``): a freshly initialised model;
- ``.safetensors``: spikedet's shipped format. Tensors only (no pickle), with the model config in the file's
  metadata under ``"spikedet"``: the model YAML, class names, the network's state (``trained``,
  ``reparameterized`` or ``converted``), every neuron's code (per-layer L, N, zero offset, encoding, and
  whether it has a per-channel scale), and for converted models the spike trains each conv was folded for;
- a YOLOv5 ``.pt`` (the yolov5 repository's checkpoints): read by a restricted unpickler that runs no code
  (:mod:`spikedet.io.yolov5`);
- a SpikeYOLO ``.pt`` (BICLab/SpikeYOLO's trainer, full or stripped): read by a restricted unpickler that runs no
  code (:mod:`spikedet.io.spikeyolo`), so it loads without ``allow_pickle`` (pass ``restricted=False`` to
  refuse it too, as the HTTP service does without its pickle opt-in);
- an Ultralytics ``.pt`` (your own training runs, resume): a pickle. Unpickling runs code from the file, so
  :func:`load_model` reads one only with ``allow_pickle=True``.

    >>> model = load_model("spikeyolo-t.yaml", allow_pickle=False)
    >>> type(model).__name__, model.names[0]
    ('SpikeDetectionModel', '0')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from ultralytics.nn.tasks import load_checkpoint

from spikedet.assets import resolve_model_yaml, resolve_weights
from spikedet.errors import SpikedetError, first_line
from spikedet.io.integer_format import TENSOR_FIELDS, dequantized, graph_document, install_graph
from spikedet.io.outputs import output_file, write_safetensors
from spikedet.io.restricted_pickle import check_zip, readable
from spikedet.io.spikeyolo import load_spikeyolo_checkpoint, refuse_unsupported, spikeyolo_kind
from spikedet.io.yolov5 import is_yolov5_checkpoint, load_yolov5_checkpoint
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.mode import (
    conversion_terms,
    is_converted,
    is_integer,
    is_reparameterized,
    restore_conversion,
    set_spike_mode,
)
from spikedet.nn.mode import spike_path as spike_path_of
from spikedet.snn.neurons import SpikingNeuron, neuron_from_spec

FORMAT = "spikedet-model"
FORMAT_VERSION = 2  # 2: integer models (state "integer" and their graph); v1 files read unchanged

WeightsFormat = Literal["safetensors", "yolov5", "spikeyolo", "pickle", "other"]
SUFFIXES = (".safetensors", ".pt")

PICKLE_REFUSED = ("{path!r} is a pickle, which runs code when loaded: convert it to safetensors (spikedet convert) "
                  "or opt in with --allow-pickle (SPIKEDET_ALLOW_PICKLE=1; allow_pickle=True in Python)")


def is_model_yaml(name: str | Path | None) -> bool:
    return name is not None and str(name).lower().endswith((".yaml", ".yml"))


def weights_format(path: Path) -> WeightsFormat:
    """What a resolved weights file is, from its suffix (and, for ``.pt``, the names its pickle holds)."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".pt":
        if is_yolov5_checkpoint(path):
            return "yolov5"
        return "spikeyolo" if spikeyolo_kind(path) is not None else "pickle"
    return "other"


def resolve(name: str | Path | None, *, allow_pickle: bool, restricted: bool = True) -> Path:
    """The file (or model YAML) ``name`` means; a ``.pt`` only when ``allow_pickle`` (YOLOv5's included), but a
    SpikeYOLO ``.pt`` (read without running code) also when ``restricted``."""
    if is_model_yaml(name):
        resolve_model_yaml(name)  # fails clearly on an unknown name; the name itself keeps its scale
        return Path(str(name))
    path = resolve_weights(name)
    if path.suffix.lower() not in SUFFIXES:
        raise SpikedetError(f"unsupported weights format {path.suffix!r} for {str(path)!r} "
                            "(expected .safetensors or .pt)")
    if path.suffix.lower() == ".pt" and not allow_pickle and not (restricted and spikeyolo_kind(path) is not None):
        raise SpikedetError(PICKLE_REFUSED.format(path=str(path)))
    return path


def check_weights(name: str | Path | None, *, allow_pickle: bool, restricted: bool = True) -> Path:
    """Fail fast on weights that would fail to load (header and config only; nothing is unpickled)."""
    path = resolve(name, allow_pickle=allow_pickle, restricted=restricted)
    if path.suffix.lower() == ".safetensors":
        read_config(path)
    elif path.suffix.lower() == ".pt":
        check_zip(path)
        refuse_unsupported(path)
    return path


def load_model(name: str | Path | None = None, *, allow_pickle: bool = False, restricted: bool = True,
               device: str | torch.device = "cpu") -> SpikeDetectionModel:
    """The model ``name`` means (see the module docstring), on ``device``."""
    path = resolve(name, allow_pickle=allow_pickle, restricted=restricted)
    if is_model_yaml(path):
        return SpikeDetectionModel(str(path), verbose=False).to(device)
    kind = weights_format(path)
    with readable(path):
        if kind == "safetensors":
            model = load_safetensors(path)
        elif kind == "yolov5":
            model = load_yolov5_checkpoint(path)
        elif kind == "spikeyolo":
            model = load_spikeyolo_checkpoint(path)
        else:
            check_zip(path)
            model = load_checkpoint(str(path))[0]
    return model.to(device)


# -- safetensors ----------------------------------------------------------------------------------

def model_state(model: nn.Module) -> str:
    if is_integer(model):
        return "integer"
    if is_converted(model):
        return "converted"
    return "reparameterized" if is_reparameterized(model) else "trained"


def save_model(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Save a spikedet detection model as safetensors + config (see the module docstring)."""
    path = output_file(path, (".safetensors",))
    config = {
        "format": FORMAT,
        "version": FORMAT_VERSION if is_integer(model) else 1,  # float models stay readable by older spikedet
        "yaml": _plain(model.yaml),
        "names": {str(k): v for k, v in dict(model.names).items()},
        "state": model_state(model),
        "neurons": {name: m.spec() for name, m in model.named_modules() if isinstance(m, SpikingNeuron)},
        "conversion": conversion_terms(model),
        "spike_path": spike_path_of(model),
        "extra": extra or {},
    }
    tensors = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    if config["state"] == "integer":  # the integer graph's tensors replace the convs' float weights
        config["graph"], graph_tensors = graph_document(model)
        tensors.update({k: v.detach().cpu().contiguous() for k, v in graph_tensors.items()})
    return write_safetensors(tensors, path, metadata={"spikedet": json.dumps(config)})


def read_config(path: str | Path) -> dict:
    """The spikedet config stored in a safetensors file's metadata."""
    from safetensors import safe_open

    if Path(path).is_dir():
        raise SpikedetError(f"{str(path)!r} is a folder, not a weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise SpikedetError(f"{str(path)!r} is not a readable safetensors file: {first_line(e)}") from None
    if "spikedet" not in metadata:
        raise SpikedetError(f"{str(path)!r} has no spikedet config in its metadata (not a spikedet model)")
    try:
        config = json.loads(metadata["spikedet"])
    except json.JSONDecodeError:
        raise SpikedetError(f"{str(path)!r}: the spikedet config in its metadata is not valid JSON") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("version"), int):
        raise SpikedetError(f"{str(path)!r}: not a spikedet weights config")
    if config["version"] > FORMAT_VERSION:
        raise SpikedetError(f"{str(path)!r}: spikedet weights format v{config['version']} is newer than this spikedet reads")
    missing = [k for k in ("yaml", "names", "state", "neurons") if k not in config]
    if missing:
        raise SpikedetError(f"{str(path)!r}: the spikedet config lacks {', '.join(missing)}")
    return config


def load_safetensors(path: str | Path) -> SpikeDetectionModel:
    """Rebuild a spikedet model from safetensors + config (no pickle involved)."""
    from safetensors.torch import load_file

    config = read_config(path)
    with readable(Path(path)):
        model = SpikeDetectionModel(config["yaml"], verbose=False).eval()
        if config["state"] in ("reparameterized", "converted", "integer"):
            model.reparameterize()
        for name, spec in config["neurons"].items():
            _set_module(model, name, neuron_from_spec(spec))
        model_neurons = {n for n, m in model.named_modules() if isinstance(m, SpikingNeuron)}
        if model_neurons != set(config["neurons"]):
            raise SpikedetError(f"{str(path)!r}: neuron layout does not match the model config")
        state = load_file(str(path))
        graph = config.get("graph") if config["state"] == "integer" else None
        if config["state"] == "integer" and not isinstance(graph, dict):
            raise SpikedetError(f"{str(path)!r}: an integer model without its integer graph (a damaged file?)")
        graph_tensors = _graph_tensors(graph, state) if graph is not None else {}
        floats = {k: v for k, v in state.items() if k not in graph_tensors}
        missing, unexpected = model.load_state_dict(floats, strict=False)
        if graph is not None:  # the convs' float weights are what their integers stand for
            missing = [k for k in missing if k not in graph_tensors]
        if missing or unexpected:
            raise SpikedetError(f"{str(path)!r} does not match its model config "
                                f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})")
        model.names = {int(k): v for k, v in config["names"].items()}
        if config["state"] in ("converted", "integer"):
            restore_conversion(model, config["conversion"])
        if graph is not None:
            install_graph(model, graph, graph_tensors)
            dequantized(model)
            set_spike_mode(model, "exact")
        elif config["state"] == "converted":
            set_spike_mode(model, config.get("spike_path") or "integer")
    return model


def _graph_tensors(graph: dict, state: dict) -> dict:
    """The tensors an integer graph names (a missing one is reported by the graph check)."""
    names = {node[key] for node in graph.get("nodes", []) if isinstance(node, dict)
             for key in TENSOR_FIELDS if isinstance(node.get(key), str)}
    return {k: state[k] for k in names if k in state}


def _set_module(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _plain(value):
    """JSON-safe copy of a model config (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))
