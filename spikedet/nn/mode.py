"""Spike mode of a whole network: which layers pass integer codes, which path the convs run, and the
conversion state of a network read off its convs (never kept in a flag beside them).

In spike mode every :class:`~spikedet.snn.neurons.SpikingNeuron` hands on a
:class:`~spikedet.snn.spikes.SpikeTrain` instead of values and every :class:`~spikedet.nn.conv.SpikeConv`
runs the chosen path (``integer`` or ``bitplane``) on what it receives.
"""

from __future__ import annotations

from torch import nn

from spikedet.errors import SpikedetError
from spikedet.nn.conv import SPIKE_PATHS, InputTerm, SpikeConv, SpikePath
from spikedet.snn.neurons import SpikingNeuron


def is_reparameterized(model: nn.Module) -> bool:
    """Whether every mergeable unit of ``model`` is merged (a model without the protocol counts as merged)."""
    fused = getattr(model, "is_fused", None)
    return bool(fused()) if callable(fused) else True


def set_spike_mode(model: nn.Module, path: SpikePath | None) -> nn.Module:
    """Switch a (re-parameterized) model to spike mode on ``path``, or back to float mode with ``None``."""
    if path is not None and path not in SPIKE_PATHS:
        raise SpikedetError(f"spike path must be one of {', '.join(SPIKE_PATHS)}, got {path!r}")
    if path is not None and not is_reparameterized(model):
        raise SpikedetError("spike mode needs a re-parameterized model: call model.reparameterize() first")
    if path is not None and (path == "exact") != is_integer(model):
        raise SpikedetError("the exact path is an integer model's arithmetic: an integer model runs it, and only it "
                            "(spikedet convert --integer makes one)" if path == "exact" else
                            f"an integer model runs its exact integer arithmetic, not the {path} path")
    for name, m in model.named_modules():
        if isinstance(m, SpikingNeuron):
            m.set_spike_mode(path is not None, name)
        elif isinstance(m, SpikeConv):
            m.set_spike_mode(path or "integer", name)
    return model


def spike_path(model: nn.Module) -> SpikePath | None:
    """The path a model in spike mode runs (None in float mode or without neurons)."""
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    if not neurons or not all(n.spike_mode for n in neurons):
        return None
    return next((m.spike_path for m in model.modules() if isinstance(m, SpikeConv)), "integer")


def is_converted(model: nn.Module) -> bool:
    """Whether the converter folded ``model``'s weights (some conv consumes integer codes)."""
    return any(isinstance(m, SpikeConv) and m.conversion is not None for m in model.modules())


def is_integer(model: nn.Module) -> bool:
    """Whether ``model`` is an integer deployment model (its convs hold integer weights)."""
    return any(isinstance(m, SpikeConv) and m.integer is not None for m in model.modules())


def timesteps(model: nn.Module) -> int:
    """The timesteps ``T`` a network's neurons run (1 without neurons)."""
    return max((m.T for m in model.modules() if isinstance(m, SpikingNeuron)), default=1)


def has_neurons(model: nn.Module) -> bool:
    return any(isinstance(m, SpikingNeuron) for m in model.modules())


def conversion_terms(model: nn.Module) -> dict[str, list[dict]]:
    """Per converted conv (by name), the trains it consumes, as saved in a weights file's config."""
    return {
        name: [t.as_dict() for t in m.conversion.terms]
        for name, m in model.named_modules()
        if isinstance(m, SpikeConv) and m.conversion is not None
    }


def restore_conversion(model: nn.Module, terms: dict[str, list[dict]]) -> None:
    """Mark the convs of a loaded converted model with their input terms (the weights are already folded)."""
    modules = dict(model.named_modules())
    for name, specs in terms.items():
        conv = modules.get(name)
        if not isinstance(conv, SpikeConv):
            raise SpikedetError(f"converted weights name a conv {name!r} that the model does not have")
        conv.set_conversion([InputTerm(**s) for s in specs])
