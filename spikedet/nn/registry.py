"""The block registry that spikedet's YAML builder reads.

A block is one decorated class::

    @register_block("AllConvBlock", channels="same")
    class AllConvBlock(nn.Module):
        def __init__(self, dim: int, r: int = 4, k: int = 7, *, neuron: NeuronFactory): ...

``channels`` tells the builder how a YAML row's arguments relate to channel counts:

- ``"out"``: the first argument is the output channel count before width scaling; the builder scales it
  and calls ``cls(c_in, c_out, *rest)``.
- ``"same"``: the block keeps the channel count; the builder calls ``cls(c_in, *args)``.
- ``"keep"``: like ``"same"`` for blocks without channel arguments (upsample); ``cls(*args)``.
- ``"concat"``: output channels are the sum of the inputs'; ``cls(*args)``.
- ``"detect"``: a detection head; ``cls(nc, channels_of_inputs, *rest)`` with ``nc`` taken from the YAML.
- ``"input"``: the first layer, fed the image; ``cls(*args)`` keeps the image's channels.

Blocks that contain spiking neurons take a keyword ``neuron``: a zero-argument callable that returns a
new neuron configured from the YAML's ``neuron:`` section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

ChannelRule = Literal["out", "same", "keep", "concat", "detect", "input"]
NeuronFactory = Callable[[], nn.Module]


@dataclass(frozen=True)
class BlockSpec:
    name: str
    cls: type[nn.Module]
    channels: ChannelRule
    takes_neuron: bool
    repeatable: bool


BLOCKS: dict[str, BlockSpec] = {}


def register_block(
    name: str | None = None,
    *,
    channels: ChannelRule = "out",
    neuron: bool = True,
    repeatable: bool = True,
):
    """Class decorator adding a block to :data:`BLOCKS` under ``name`` (default: the class name)."""

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        key = name or cls.__name__
        if key in BLOCKS and BLOCKS[key].cls is not cls:
            raise ValueError(f"block name {key!r} is already registered to {BLOCKS[key].cls.__qualname__}")
        BLOCKS[key] = BlockSpec(key, cls, channels, neuron, repeatable)
        return cls

    return decorate


def get_block(name: str) -> BlockSpec:
    try:
        return BLOCKS[name]
    except KeyError:
        known = ", ".join(sorted(BLOCKS))
        raise ValueError(f"unknown block {name!r}; registered blocks: {known}") from None


def scaled_depth(repeats: int, depth: float) -> int:
    """The depth rule of YOLO scales (spikedet's builder and YOLOv5's C3): ``max(round(n * depth), 1)`` for n > 1."""
    return max(round(repeats * depth), 1) if repeats > 1 else int(repeats)
