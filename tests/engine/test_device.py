"""Device names (spikedet/engine/device.py): checked by spikedet in one line, never a silent CPU fallback."""

from __future__ import annotations

import pytest
import torch

from spikedet.engine.device import check_device, select_device
from spikedet.errors import SpikedetError


def test_cpu_and_automatic_devices_are_accepted():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type in ("cpu", "cuda")
    check_device("")


@pytest.mark.parametrize("name", ["foo", "-1", "cuda:x", "0,,1", "gpu"])
def test_unknown_device_names_are_one_line_errors(name, capsys):
    with pytest.raises(SpikedetError) as e:
        select_device(name)
    assert "unknown device" in str(e.value) and "\n" not in str(e.value)
    assert capsys.readouterr().out == ""  # no banner first


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps_is_an_error_not_the_cpu():
    with pytest.raises(SpikedetError, match="MPS"):
        select_device("mps")


def test_a_gpu_the_machine_does_not_have_is_an_error():
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in (str(missing), f"cuda:{missing}", f"0,{missing}"):
        with pytest.raises(SpikedetError, match="this machine has"):
            select_device(name)
