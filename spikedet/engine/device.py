"""Device selection: one rule for every command, the Python pipelines and the service."""

from __future__ import annotations

import torch

from spikedet.errors import SpikedetError, first_line


def select_device(device: str | int | torch.device | None) -> torch.device:
    """A torch device from a spikedet/Ultralytics device string: ``cpu``, ``0``, ``cuda:0``, ``0,1`` ...;
    ``None`` or ``""``: the first GPU if there is one, else the CPU. A device that does not exist is a
    :class:`SpikedetError` (one line)."""
    from ultralytics.utils.torch_utils import select_device as ultralytics_select

    if isinstance(device, torch.device):
        return device
    try:
        return ultralytics_select("" if device is None else str(device), verbose=False)
    except (ValueError, RuntimeError) as e:
        raise SpikedetError(first_line(e)) from None
