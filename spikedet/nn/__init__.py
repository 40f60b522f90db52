"""spikedet's building blocks. Importing this package registers every block with the YAML builder."""

from spikedet.nn import layers, spikeyolo, yolov5  # noqa: F401  (registration side effects)
from spikedet.nn.registry import BLOCKS, BlockSpec, get_block, register_block

__all__ = ["BLOCKS", "BlockSpec", "get_block", "register_block"]
