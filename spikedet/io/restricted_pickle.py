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
import io
import pickle
import types
from collections.abc import Iterable, Iterator
from typing import Any

import torch

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

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in self.stubs:
            return self.stubs[key]
        if key in SAFE_GLOBALS:
            return SAFE_GLOBALS[key]
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
