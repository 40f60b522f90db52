"""Module names of earlier spikedet versions, so checkpoints pickled by them still load.

A pickled ``.pt`` names each class by module path (``spikedet.neurons.IBRALIF``). The modules have since
moved (``spikedet.snn.neurons``); a finder on ``sys.meta_path`` answers the old names with a module that
looks each name up in the new places, imported only when a pickle asks for one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

#: Old module name -> the modules that now hold its classes (searched in order).
LEGACY_MODULES: dict[str, tuple[str, ...]] = {
    "spikedet.neurons": ("spikedet.snn.neurons", "spikedet.snn.code"),
    "spikedet.spikes": ("spikedet.snn.spikes",),
    "spikedet.a2s": ("spikedet.snn.neurons", "spikedet.convert.a2s"),
}


class _LegacyFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in LEGACY_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name, f"alias of {', '.join(LEGACY_MODULES[spec.name])} (earlier module name)")
        targets = LEGACY_MODULES[spec.name]

        def lookup(name: str):
            for target in targets:
                found = importlib.import_module(target)
                if hasattr(found, name):
                    return getattr(found, name)
            raise AttributeError(f"module {spec.name!r} (now {', '.join(targets)}) has no attribute {name!r}")

        module.__getattr__ = lookup
        return module

    def exec_module(self, module) -> None:
        pass


def install_legacy_names() -> None:
    """Answer the old module names (idempotent)."""
    if not any(isinstance(f, _LegacyFinder) for f in sys.meta_path):
        sys.meta_path.append(_LegacyFinder())
