"""The restricted unpickler: hostile pickles are refused before any code runs."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from spikedet.io.yolov5 import (
    RESTRICTED_PICKLE,
    read_yolov5_checkpoint,
    restricted_loads,
)


class Hostile:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unpickler_refuses_a_hostile_pickle(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(pickle.UnpicklingError, match=r"system"):
        restricted_loads(pickle.dumps({"model": Hostile(marker)}))
    assert not marker.exists()

    # the same payload inside a torch zip checkpoint, the way a tampered .pt would carry it
    bad = tmp_path / "bad.pt"
    torch.save({"model": Hostile(marker), "w": torch.zeros(2)}, bad)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global '(posix|os)\.system'"):
        read_yolov5_checkpoint(bad)
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_loads(pickle.dumps(eval))
    assert not marker.exists()


def test_unpickler_allows_only_plain_containers_and_tensors():
    buf = io.BytesIO()
    torch.save({"t": torch.arange(3, dtype=torch.float16)}, buf)
    buf.seek(0)
    loaded = torch.load(buf, pickle_module=RESTRICTED_PICKLE, weights_only=False)
    assert loaded["t"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(pickle.UnpicklingError, match="torch.nn.modules.linear.Linear"):
        restricted_loads(pickle.dumps(nn.Linear(2, 2)))
