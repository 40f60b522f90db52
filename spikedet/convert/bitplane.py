"""The bit-plane inference model: converting a trained network so that every conv consumes integer codes.

:func:`convert` turns a trained spikedet model into the network the IBRA-LIF paper runs at inference
(eqs. 12-15), without retraining:

1. re-parameterize: RepConv and SepConv tails merged into single 3x3 convs, every BN folded;
2. trace which spike trains feed each conv (one train, a sum of trains from a residual add, or a concat of
   trains with different codes) and fold each train's ``scale / N`` into the conv's weights per input
   channel (``W^N = W / N``), so the conv consumes integer codes directly;
3. record each conv's input trains in its :class:`~spikedet.nn.conv.ConvConversion`: zero-code offsets
   (codes whose value 0 is not code 0) become a constant map removed once, with the bias.

The converted convs then run the ``integer`` or the ``bitplane`` path (:mod:`spikedet.nn.conv`). Both give
the same codes everywhere in float64 (:mod:`spikedet.convert.verify` checks it against the
re-parameterized float model); float32 sums in a different order flip a few codes that sit exactly on a
rounding boundary, so there the mismatch rate and detection agreement are reported.

    >>> import torch
    >>> from spikedet.model.detection import SpikeDetectionModel
    >>> model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval()
    >>> converted = convert(model, torch.zeros(1, 3, 64, 64))
    >>> is_converted(converted), is_converted(model)
    (True, False)
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from spikedet.errors import SpikedetError
from spikedet.nn.conv import InputTerm, SpikeConv, SpikePath
from spikedet.nn.mode import (
    has_neurons,
    is_converted,
    is_integer,
    is_reparameterized,
    set_spike_mode,
)
from spikedet.snn.spikes import SpikeTrain, is_spiking

# -- conversion ----------------------------------------------------------------------------------

@torch.no_grad()
def trace_inputs(model: nn.Module, images: Tensor) -> dict[str, list[tuple[SpikeTrain, int]]]:
    """Run ``images`` in spike mode and return, per conv that receives spikes, the trains it receives."""
    seen: dict[str, list[tuple[SpikeTrain, int]]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, SpikeConv):
            def hook(mod, args, name=name):
                if is_spiking(args[0]):
                    seen[name] = args[0].terms()
            hooks.append(m.register_forward_pre_hook(hook))
    try:
        model(images)
    finally:
        for h in hooks:
            h.remove()
    return seen


@torch.no_grad()
def convert(model: nn.Module, sample: Tensor) -> nn.Module:
    """A converted copy of ``model`` (see the module docstring); ``sample`` is one or more images ``[B,3,H,W]``.

    The input structure of every conv is read from a trace of ``sample``; it does not depend on the image
    content, only on the architecture.
    """
    if is_converted(model):
        raise SpikedetError("the model is already converted (its weights hold W / N): convert the trained model")
    converted = copy.deepcopy(model).eval()
    if hasattr(converted, "reparameterize") and not is_reparameterized(converted):
        converted.reparameterize()
    set_spike_mode(converted, "integer")
    dtype = next(converted.parameters()).dtype
    seen = trace_inputs(converted, sample.to(dtype))
    modules = dict(converted.named_modules())
    for name, terms in seen.items():
        fold_conv(modules[name], terms)
    return converted


def fold_conv(conv: SpikeConv, terms: list[tuple[SpikeTrain, int]]) -> None:
    """Fold each train's per-channel ``scale / N`` into ``conv``'s weight and record its input terms."""
    name = conv.report_name or "conv"
    factor = torch.full((conv.in_channels,), float("nan"), dtype=torch.float64, device=conv.weight.device)
    specs = []
    for train, off in terms:
        f = train.factor(torch.float64)
        current = factor[off : off + train.channels]
        known = ~torch.isnan(current)
        if bool(known.any()) and not torch.equal(current[known], f[known]):
            raise SpikedetError(
                f"{name}: spike trains with different scales are summed into the same channels; "
                "give the summed neurons equal N and scale"
            )
        factor[off : off + train.channels] = f
        c = train.code
        specs.append(InputTerm(off, train.channels, c.levels, c.n, c.zero, c.encoding, train.scale is not None, c.rest))
    if bool(torch.isnan(factor).any()):
        raise SpikedetError(f"{name}: some input channels receive no spikes")
    if conv.groups > 1 and len(specs) > 1:
        raise SpikedetError(f"{name}: a grouped conv fed by several spike trains is not supported")
    w = conv.weight.double()
    if conv.groups == 1:
        w = w * factor.view(1, -1, 1, 1)
    else:
        g, cg = conv.groups, conv.in_channels // conv.groups
        w = (w.view(g, -1, cg, *w.shape[2:]) * factor.view(g, 1, cg, 1, 1)).view_as(w)
    conv.weight.data = w.to(conv.weight.dtype)
    conv.set_conversion(specs)


def spiking(model: nn.Module, path: SpikePath = "integer", sample_size: int = 64) -> nn.Module:
    """A model in spike mode on ``path``, ready for energy accounting and serving: ``model`` itself when it is
    already converted, else a converted float32 copy (traced on a ``sample_size`` zero image). An integer model
    runs its exact integer arithmetic whatever ``path`` says: it has no other."""
    if is_integer(model):
        return set_spike_mode(model, "exact")
    if not is_converted(model):
        model = convert(copy.deepcopy(model).float().eval(), torch.zeros(1, 3, sample_size, sample_size))
    return set_spike_mode(model, path)


def deployed(model: nn.Module) -> nn.Module:
    """The network every command runs for ``model``: a spiking model in spike mode (converted if needed; an
    integer model on its exact path), an ANN as it is. ``predict``, ``val``, ``energy``, ``analyze``, the service
    and the webcam all take it, so they return the same detections for the same image and settings."""
    return spiking(model, "integer") if has_neurons(model) else model


def require_spiking_neurons(model: nn.Module, name: str = "the model") -> nn.Module:
    """``model``, or :class:`SpikedetError` when it has no spiking neuron (an ANN: nothing to convert)."""
    if not has_neurons(model):
        raise SpikedetError(f"{name} has no spiking neurons (an ANN): make it spiking first, "
                            "e.g. spikedet a2s for a SiLU YOLO")
    return model
