"""Parameter and multiply-accumulate counts, per layer, from a real forward pass.

MACs follow the reference convention: ``C_in * C_out * k^2 * H_out * W_out / groups`` per conv, counted on
every :class:`~spikedet.nn.conv.SpikeConv` (detect-head convs included, Ultralytics' DFL not), per image,
summed over timesteps when ``T > 1``. ``macs`` is counted on the re-parameterized network (the one that
runs on spikes), ``macs_unmerged`` on the network as trained.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from spikedet.nn.conv import SpikeConv


@dataclass
class LayerCount:
    index: int
    source: int | list[int]
    repeats: int
    block: str
    params: int
    macs: int
    macs_unmerged: int
    output_shape: list[int]

    def as_dict(self) -> dict:
        return asdict(self)


def count_conv_macs(model: nn.Module, imgsz: int | tuple[int, int], device: str | torch.device = "cpu") -> dict[str, int]:
    """MACs per image of every SpikeConv in ``model`` (qualified name -> MACs) for one forward pass."""
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    counts: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, SpikeConv):
            def hook(mod, inputs, output, name=name):
                # output is [T*B, C, H, W]; the batch here is 1 image
                counts[name] = counts.get(name, 0) + mod.macs(output.shape[-2:]) * output.shape[0]
            hooks.append(module.register_forward_hook(hook))
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device, dtype=param.dtype))
    finally:
        for handle in hooks:
            handle.remove()
    return counts


def layer_table(model: nn.Module, imgsz: int | tuple[int, int] = 640) -> list[LayerCount]:
    """Per top-level layer: parameters (as trained), MACs merged and unmerged, output shape."""
    trained = copy.deepcopy(model).float().eval()
    merged = copy.deepcopy(trained).reparameterize()
    device = next(trained.parameters()).device
    shapes: dict[int, list[int]] = {}
    hooks = [  # the layers' output shapes come from the same forward pass as the unmerged counts: two passes
        layer.register_forward_hook(lambda mod, i, o, idx=idx: shapes.__setitem__(idx, _shape(o)))
        for idx, layer in enumerate(trained.model)
    ]
    try:
        unmerged_counts = count_conv_macs(trained, imgsz, device)
    finally:
        for handle in hooks:
            handle.remove()
    merged_counts = count_conv_macs(merged, imgsz, device)
    rows = []
    for idx, layer in enumerate(trained.model):
        prefix = f"model.{idx}."
        rows.append(
            LayerCount(
                index=idx,
                source=layer.f,
                repeats=len(layer) if type(layer) is nn.Sequential else 1,
                block=layer.type,
                params=sum(p.numel() for p in layer.parameters()),
                macs=sum(v for k, v in merged_counts.items() if k.startswith(prefix)),
                macs_unmerged=sum(v for k, v in unmerged_counts.items() if k.startswith(prefix)),
                output_shape=shapes.get(idx, []),
            )
        )
    return rows


def _shape(output) -> list[int]:
    if isinstance(output, torch.Tensor):
        return list(output.shape)
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return list(output[0].shape)
    return []
