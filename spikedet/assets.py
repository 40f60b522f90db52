"""Where spikedet finds its model YAMLs, sample data and shipped weights, and how names resolve.

The folders ``models/``, ``data/`` and ``weights/`` sit at the top of a source checkout and are installed
inside the package (``spikedet/models`` ...) by a wheel; both layouts are searched.

Lookup rules (the README's "Commands" section):

- model: an existing path; else ``models/<name>``; else ``<stem>-<scale>.yaml`` means ``models/<stem>.yaml``
  at that scale (``spikeyolo-s.yaml`` -> ``models/spikeyolo.yaml``, scale ``s``).
- data: an existing path; else ``data/<name>`` (``.yaml`` added when missing); else one of Ultralytics' own
  dataset names (which it may download when online); else an error naming the places it looked.
- images (``source=``): an existing path; else a file or folder under ``data/`` named the same way
  (``data/coco8/images/val``); else one of Ultralytics' sample images (``bus.jpg``); else as given (a glob,
  a URL, a camera index).
- weights: an explicit path (or a file in ``weights/``); with none given, ``$SPIKEDET_WEIGHTS``, else the
  shipped default in ``weights/``.

A relative path that starts with the folder's own name (``weights/yolov5n.pt``, ``models/spikeyolo.yaml``,
``data/coco8.yaml``, ``data/coco8/images/val``) and does not exist from the current folder means the shipped
file or folder, so the paths the README shows work from any folder and from a wheel install.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from spikedet.errors import SpikedetError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS_NAME = "yolov5n-a2s-int8.safetensors"  # the bit-exact integer model (weights/README.md)


def asset_dir(name: str) -> Path:
    """The folder ``name`` (models, data, weights, service) of an installed wheel or a source checkout."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / name


def shipped_file(path: Path, folder: str, folders: bool = False) -> Path | None:
    """The shipped file ``path`` names in ``folder``: ``NAME`` or ``folder/.../NAME`` (relative), else None;
    with ``folders``, a shipped folder named the same way counts too (``data/coco8/images/val``)."""
    if path.is_absolute():
        return None
    parts = path.parts
    if len(parts) > 1 and parts[0] == folder:
        parts = parts[1:]
    elif len(parts) != 1:
        return None
    candidate = asset_dir(folder).joinpath(*parts)
    return candidate if candidate.is_file() or (folders and candidate.is_dir()) else None


def resolve_source(source: str | os.PathLike) -> str:
    """An image source as given if it exists (or is not a path: a glob, URL, camera), else the shipped file or
    folder it names in ``data/`` (``data/coco8/images/val`` from any folder)."""
    text = str(source)
    path = Path(text).expanduser()
    if path.exists() or "://" in text:
        return text
    shipped = shipped_file(path, "data", folders=True)
    if shipped is not None:
        return str(shipped)
    if len(path.parts) == 1:  # Ultralytics' sample images (bus.jpg, zidane.jpg) by name, as `yolo predict` has them
        from spikedet.offline import import_ultralytics

        sample = Path(import_ultralytics().ASSETS) / path.name
        if sample.is_file():
            return str(sample)
    return text


def list_models() -> list[str]:
    return sorted(p.name for p in asset_dir("models").glob("*.yaml"))


def resolve_model_yaml(name: str | os.PathLike) -> tuple[Path, str | None]:
    """Return ``(yaml_path, scale)`` for a model name or path; scale is None when the name carries none."""
    text = str(name)
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise SpikedetError(f"model config must be a .yaml file, got {text!r}")
    if path.is_file():
        return path, None
    shipped = shipped_file(path, "models")
    if shipped is not None:
        return shipped, None
    match = re.fullmatch(r"(.+)-([A-Za-z0-9]+)(\.ya?ml)", path.name)
    if match:
        base = path.parent / f"{match[1]}{match[3]}"
        found = base if base.is_file() else shipped_file(base, "models")
        if found is not None:
            return found, match[2]
    known = ", ".join(list_models()) or "none"
    raise SpikedetError(f"model config {text!r} not found (models shipped: {known}; add -<scale> to pick a scale)")


def user_cache_dir() -> Path:
    """spikedet's per-user cache folder: ``$SPIKEDET_CACHE_DIR``, else ``$XDG_CACHE_HOME/spikedet``, else
    ``~/.cache/spikedet`` (not created here)."""
    if env := os.environ.get("SPIKEDET_CACHE_DIR"):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "spikedet"


def outside_package(data_yaml: Path) -> Path:
    """A shipped data YAML's twin in the user cache folder (its ``data/`` copied there), so that Ultralytics'
    label caches, which it writes beside the labels, never land inside the installed package (which may be
    read-only); any other path as it is."""
    shipped = asset_dir("data").resolve()
    full = data_yaml.resolve()
    if not full.is_relative_to(shipped):
        return data_yaml
    mirror = user_cache_dir() / "data"
    shutil.copytree(shipped, mirror, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.cache", "__pycache__"))
    return mirror / full.relative_to(shipped)


def resolve_data(name: str | os.PathLike) -> str:
    """Return the data YAML to hand to Ultralytics: a path if one exists, else the name itself; the shipped
    datasets are handed over from their copy in the user cache folder (:func:`outside_package`)."""
    text = str(name)
    path = Path(text).expanduser()
    if path.exists():
        return str(outside_package(path))
    for candidate in (path, path.with_name(path.name + ".yaml")):
        shipped = shipped_file(candidate, "data")
        if shipped is not None:
            return str(outside_package(shipped))
    looked = [str(Path.cwd() / path), str(asset_dir("data"))]
    if len(path.parts) == 1:  # one of Ultralytics' dataset names (coco128.yaml ...), which it may download
        from spikedet.offline import import_ultralytics

        datasets = Path(import_ultralytics().ROOT) / "cfg" / "datasets"
        if any((datasets / n).is_file() for n in (path.name, path.name + ".yaml")):
            return text
        looked.append(f"Ultralytics' dataset names ({datasets})")
    raise SpikedetError(f"data {text!r} not found; looked in: {', '.join(looked)}")


def default_weights() -> Path | None:
    """``$SPIKEDET_WEIGHTS`` if set, else the shipped default weights if present."""
    env = os.environ.get("SPIKEDET_WEIGHTS")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise SpikedetError(f"SPIKEDET_WEIGHTS points to {env!r}, which is not a file")
        return path
    shipped = asset_dir("weights") / DEFAULT_WEIGHTS_NAME
    return shipped if shipped.is_file() else None


def resolve_weights(name: str | os.PathLike | None) -> Path:
    """Return the weights file for ``name`` (a path or a file in ``weights/``), or the default if None."""
    if name is None or str(name) == "":
        found = default_weights()
        if found is None:
            raise SpikedetError(
                "no weights given and no default weights are installed: pass model=PATH (or --weights PATH) "
                "or set SPIKEDET_WEIGHTS"
            )
        return found
    path = Path(str(name)).expanduser()
    if path.is_file():
        return path
    shipped = shipped_file(path, "weights")
    if shipped is not None:
        return shipped
    raise SpikedetError(f"weights file {str(name)!r} not found")
