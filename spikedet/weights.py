"""Loading and saving models.

Formats:

- model YAML: a freshly initialised model;
- ``.pt``: a pickled Ultralytics checkpoint (your own training runs and resume); unpickling runs code from
  the file, so load only files you trust;
- ``.safetensors``: spikedet's shipped format. Tensors only (no pickle), with the model config in the file's
  metadata under ``"spikedet"``: the model YAML, class names, the network's state (``trained``,
  ``reparameterized`` or ``converted``), every neuron's code (per-layer L, N, zero offset, encoding, and
  whether it has a per-channel scale), and for converted models the spike trains each conv was folded for.
"""

from __future__ import annotations

import contextlib
import json
import pickle
from pathlib import Path

import torch
from torch import nn

from spikedet.assets import resolve_weights
from spikedet.errors import SpikedetError, first_line

FORMAT = "spikedet-model"
FORMAT_VERSION = 1


def load_module(name: str | Path, device: str = "cpu") -> nn.Module:
    """The ``nn.Module`` of a model YAML (freshly initialised) or a weights file."""
    text = str(name)
    if text.endswith((".yaml", ".yml")):
        from spikedet.model import SpikeDetectionModel

        return SpikeDetectionModel(text, verbose=False).to(device)
    path = resolve_weights(text)
    if path.suffix.lower() == ".safetensors":
        return load_safetensors(path).to(device)
    if _is_yolov5(path):
        from spikedet.yolov5_import import load_yolov5_checkpoint

        with _readable(path):
            return load_yolov5_checkpoint(path).to(device)
    return load_detector(path).model.to(device)


def _is_yolov5(path: Path) -> bool:
    from spikedet.yolov5_import import is_yolov5_checkpoint

    return path.suffix.lower() == ".pt" and is_yolov5_checkpoint(path)


def resolve_for_inference(weights: str | Path | None, allow_pickle: bool) -> Path:
    """The weights file (or model YAML) an inference service loads: the default when None; a pickled ``.pt``
    only when ``allow_pickle`` (unpickling runs code from the file); only ``.safetensors`` and ``.pt``."""
    if weights is not None and str(weights).endswith((".yaml", ".yml")):
        from spikedet.assets import resolve_model_yaml

        resolve_model_yaml(weights)  # fails clearly on an unknown name; the name itself keeps its scale
        return Path(str(weights))
    path = resolve_weights(weights)
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pt"):
        raise SpikedetError(f"unsupported weights format {suffix!r} for {str(path)!r} (expected .safetensors or .pt)")
    if suffix == ".pt" and not allow_pickle:
        raise SpikedetError(
            f"{str(path)!r} is a pickle, which runs code when loaded: convert it to safetensors (spikedet convert) "
            "or opt in with --allow-pickle (SPIKEDET_ALLOW_PICKLE=1; allow_pickle=True in Python)"
        )
    return path


def load_detector(weights: str | Path | None):
    """A :class:`~spikedet.model.SpikeYOLO` for a weights file (default weights when None) or a model YAML."""
    from spikedet.model import SpikeYOLO

    if weights is not None and str(weights).endswith((".yaml", ".yml")):
        return SpikeYOLO(str(weights))
    path = resolve_weights(weights)
    if path.suffix.lower() not in (".pt", ".safetensors"):
        raise SpikedetError(f"unsupported weights format {path.suffix!r} for {str(path)!r} (expected .pt or .safetensors)")
    if _is_yolov5(path):  # the yolov5 repository's checkpoints load through spikedet's restricted unpickler
        return SpikeYOLO(load_module(path))
    with _readable(path):
        return SpikeYOLO(str(path))


@contextlib.contextmanager
def _readable(path: Path):
    """Turn the errors of reading a corrupt or foreign weights file into one clear :class:`SpikedetError`."""
    try:
        yield
    except SpikedetError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, TypeError, ValueError, KeyError, AttributeError,
            OSError, ModuleNotFoundError, json.JSONDecodeError) as e:
        raise SpikedetError(f"cannot load {str(path)!r}: not usable spikedet/Ultralytics weights ({type(e).__name__}: {first_line(e)})") from None


def model_state(model: nn.Module) -> str:
    if getattr(model, "converted", False):
        return "converted"
    fused = getattr(model, "is_fused", None)
    return "reparameterized" if callable(fused) and fused() else "trained"


def save_safetensors(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Save a spikedet detection model as safetensors + config (see the module docstring)."""
    from safetensors.torch import save_file

    from spikedet.bitplane import conversion_terms
    from spikedet.neurons import SpikingNeuron

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise SpikedetError(f"output must end in .safetensors, got {str(path)!r}")
    config = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "yaml": _plain(model.yaml),
        "names": {str(k): v for k, v in dict(model.names).items()},
        "state": model_state(model),
        "neurons": {name: m.spec() for name, m in model.named_modules() if isinstance(m, SpikingNeuron)},
        "conversion": conversion_terms(model),
        "spike_path": getattr(model, "spike_path", None),
        "extra": extra or {},
    }
    tensors = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"spikedet": json.dumps(config)})
    return path


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


def load_safetensors(path: str | Path) -> nn.Module:
    """Rebuild a spikedet model from safetensors + config (no pickle involved)."""
    config = read_config(path)
    with _readable(Path(path)):
        return _build_from_config(path, config)


def _build_from_config(path, config: dict) -> nn.Module:
    from safetensors.torch import load_file

    import spikedet.a2s  # noqa: F401  (registers the A2S neuron type)
    from spikedet.bitplane import restore_conversion, set_spike_mode
    from spikedet.model import SpikeDetectionModel
    from spikedet.neurons import SpikingNeuron, neuron_from_spec

    model = SpikeDetectionModel(config["yaml"], verbose=False).eval()
    if config["state"] in ("reparameterized", "converted"):
        model.reparameterize()
    for name, spec in config["neurons"].items():
        _set_module(model, name, neuron_from_spec(spec))
    model_neurons = {n for n, m in model.named_modules() if isinstance(m, SpikingNeuron)}
    if model_neurons != set(config["neurons"]):
        raise SpikedetError(f"{str(path)!r}: neuron layout does not match the model config")
    tensors = load_file(str(path))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise SpikedetError(
            f"{str(path)!r} does not match its model config (missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
        )
    model.names = {int(k): v for k, v in config["names"].items()}
    if config["state"] == "converted":
        restore_conversion(model, config["conversion"])
        set_spike_mode(model, config.get("spike_path") or "integer")
    model.spikedet_extra = config.get("extra", {})
    return model


def _set_module(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _plain(value):
    """JSON-safe copy of a model config (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))
