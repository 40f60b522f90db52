"""spikedet's layers and blocks, and the block registry the YAML builder reads.

Importing this package imports every block family (:mod:`.layers`, :mod:`.spikeyolo`, :mod:`.yolov5`), each
of which registers its blocks with :func:`~spikedet.nn.registry.register_block`; the builder reads blocks
through :func:`get_block` here, so every family is known before a YAML is built.
"""

from spikedet.nn import layers, spikeyolo, yolov5  # noqa: F401  (the block families register themselves)
from spikedet.nn.registry import BLOCKS, BlockSpec, get_block, register_block

__all__ = ["BLOCKS", "BlockSpec", "get_block", "register_block"]
