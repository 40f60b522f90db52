"""Unpickling that runs no code: a pickle's globals resolve only to an allowed table.

A pickle names the classes it rebuilds by dotted path, and a normal unpickler imports and calls them: a
hostile file can name ``os.system``. :class:`RestrictedUnpickler` resolves a global only when its table
allows it: to an inert :class:`ModuleStub` that merely records the pickled state (tensors and
hyperparameters), or to one of a few real, harmless objects (plain containers, torch's tensor
rebuilders); anything else raises :class:`pickle.UnpicklingError` naming the refused global.
:func:`pickle_module` wraps an unpickler for ``torch.load(..., pickle_module=...)``. Which globals a
format may name is that format's business (:mod:`spikedet.io.yolov5` lists YOLOv5's).

    >>> import pickle
    >>> class Only(RestrictedUnpickler):
    ...     stubs = stub_classes(["collections.Counter"])
    >>> Only.loads(pickle.dumps(__import__("collections").Counter("aab"))).source
    'collections.Counter'
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import pickle
import types
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from spikedet.errors import SpikedetError, first_line

__all__ = ["ModuleStub", "RestrictedUnpickler", "pickle_module", "stub_classes"]


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


def pair(x) -> tuple:
    """A pickled conv's kernel size, stride or padding as a pair (an int ``k`` stands for ``(k, k)``)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


CONV_GEOMETRY = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")


def conv_mismatch(stub: ModuleStub, conv: torch.nn.Conv2d, model: str = "spikedet") -> str | None:
    """The first geometry attribute in which a pickled ``Conv2d`` stub and ``conv`` differ, said as
    ``"stride is (2, 2) in the checkpoint but (1, 1) in spikedet"``; None when they agree."""
    for attr in CONV_GEOMETRY:
        want, got = stub.get(attr), getattr(conv, attr)
        if attr in ("kernel_size", "stride", "padding", "dilation"):
            want = pair(want)
        if want != got:
            return f"{attr} is {want} in the checkpoint but {got} in {model}"
    return None


def stub_classes(names: Iterable[str]) -> dict[str, type[ModuleStub]]:
    """One :class:`ModuleStub` subclass per dotted class name (its ``source``)."""
    return {
        name: type(name.rsplit(".", 1)[-1] + "Stub", (ModuleStub,), {"source": name, "__module__": __name__})
        for name in names
    }


# Real objects any checkpoint may build: plain containers and torch's own tensor/parameter rebuilders.
SAFE_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set,
    "__builtin__.set": set,  # protocol-2 pickles spell builtins the Python 2 way
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler resolving only the globals of its tables (subclasses set ``stubs`` and ``what``).

    ``stubs`` maps dotted class names to :class:`ModuleStub` classes; :data:`SAFE_GLOBALS` are the real
    ones; everything else raises :class:`pickle.UnpicklingError`. (Under :func:`torch.load`, storage classes
    such as ``torch.HalfStorage`` are resolved by torch before this method is asked.)
    """

    stubs: dict[str, type[ModuleStub]] = {}
    what: str = "a checkpoint"  # for the refusal message: "not one of the classes <what> may reference"
    #: harmless real globals this kind of checkpoint also needs, beside :data:`SAFE_GLOBALS`
    extra_globals: dict[str, Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in self.stubs:
            return self.stubs[key]
        if key in SAFE_GLOBALS:
            return SAFE_GLOBALS[key]
        if key in self.extra_globals:
            return self.extra_globals[key]
        raise pickle.UnpicklingError(f"refusing to load global {key!r}: not one of the classes {self.what} may reference")

    @classmethod
    def loads(cls, data: bytes, **kwargs) -> Any:
        """``pickle.loads`` through this unpickler."""
        return cls(io.BytesIO(data), **kwargs).load()


def pickle_module(unpickler: type[RestrictedUnpickler]) -> types.ModuleType:
    """A module-like object for ``torch.load(..., pickle_module=...)`` that unpickles with ``unpickler``."""
    module = types.ModuleType(f"spikedet_{unpickler.__name__}", f"pickle, restricted to {unpickler.what}'s globals")
    module.Unpickler = unpickler
    module.load = lambda file, **kwargs: unpickler(file, **kwargs).load()
    module.loads = unpickler.loads
    module.UnpicklingError = pickle.UnpicklingError
    module.__version__ = "1"
    return module


# -- reading checkpoint files ---------------------------------------------------------------------

def check_zip(path: Path) -> None:
    """A ``.pt`` checkpoint is a zip archive; anything else (empty, truncated, another file) is one clear line
    here rather than the reader's nested messages."""
    if not zipfile.is_zipfile(path):
        raise SpikedetError(f"cannot load {str(path)!r}: not a PyTorch checkpoint (not a zip archive: the file is "
                            "empty, truncated or something else)")


@contextlib.contextmanager
def readable(path: Path):
    """Turn the errors of reading a corrupt or foreign weights file into one clear :class:`SpikedetError`."""
    try:
        yield
    except SpikedetError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, TypeError, ValueError, KeyError, AttributeError,
            OSError, ModuleNotFoundError, json.JSONDecodeError) as e:
        reason = first_line(e).split(" (")[0]  # the reader's own message, without the notes nested in it
        raise SpikedetError(f"cannot load {str(path)!r}: not usable spikedet/Ultralytics weights "
                            f"({type(e).__name__}: {reason})") from None


def pickle_bytes(path: str | Path) -> bytes | None:
    """The pickle (``data.pkl``) of a torch zip checkpoint, as bytes (nothing is unpickled); None when ``path``
    is not one (any unreadable archive: the loading path then reports it in one line)."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            return None if name is None else z.read(name)
    except Exception:  # noqa: BLE001 -- bad deflate data, encryption, ...: not a checkpoint we can read
        return None


def read_checkpoint(path: Path, pickle_module: types.ModuleType, fail) -> dict:
    """The checkpoint dict of a ``.pt`` read through a restricted ``pickle_module`` (``fail(message)`` raises the
    importer's own error); the reader's own errors pass through (callers turn them into one line with
    :func:`readable`)."""
    if not path.is_file():
        fail(f"checkpoint {str(path)!r} not found")
    ckpt = torch.load(path, map_location="cpu", pickle_module=pickle_module, weights_only=False)
    if not isinstance(ckpt, dict):
        fail(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt
