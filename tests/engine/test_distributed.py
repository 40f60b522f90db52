"""The world size of a distributed run: torchrun's WORLD_SIZE (every process of every node), not the local devices.

The processes themselves are tested in test_ddp_gloo.py (two CPU processes over gloo, one node and two nodes).
"""

from __future__ import annotations

import pytest

from spikedet.engine.distributed import launched_world_size


@pytest.mark.parametrize(
    ("environ", "world"),
    [
        ({}, 0),  # not started by torchrun: Ultralytics counts the devices (and launches DDP itself)
        ({"LOCAL_RANK": "3", "RANK": "11", "WORLD_SIZE": "16"}, 16),  # 2 nodes x 8 GPUs: all 16, not this node's 8
        ({"LOCAL_RANK": "0", "RANK": "1", "WORLD_SIZE": "2"}, 2),  # 2 CPU nodes of one process each
        ({"LOCAL_RANK": "0", "RANK": "0", "WORLD_SIZE": "1"}, 0),  # one process: not distributed, as Ultralytics reads it
        ({"WORLD_SIZE": "4"}, 0),  # no LOCAL_RANK: not a torchrun worker
    ],
)
def test_the_world_is_torchruns_world_size(environ, world):
    assert launched_world_size(environ) == world
