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
    check_device(device)
    try:
        return ultralytics_select("" if device is None else str(device), verbose=False)
    except (ValueError, RuntimeError) as e:
        raise SpikedetError(first_line(e)) from None


DEVICE_HELP = "use cpu, mps, cuda, a GPU index (0) or cuda:0, or several GPUs as 0,1"


def check_device(device: str | int | None) -> None:
    """Check a device name ourselves, before Ultralytics sees it: it prints a banner before its error and
    falls back to the CPU on an ``mps`` that is not there. A name that is not a device, or a device this
    machine does not have, is a one-line :class:`SpikedetError`."""
    text = "" if device is None else str(device).strip().lower()
    if text in ("", "cpu"):
        return
    if text == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SpikedetError("device=mps: Apple's Metal (MPS) backend is not available on this machine; "
                                "use device=cpu")
        return
    indices = text.removeprefix("cuda:") if text.startswith("cuda:") else text
    if indices == "cuda":
        indices = "0"
    parts = [p.strip() for p in indices.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise SpikedetError(f"unknown device {str(device)!r}: {DEVICE_HELP}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [p for p in parts if int(p) >= count]
    if missing:
        have = f"{count} CUDA GPU(s) (0..{count - 1})" if count else "no CUDA GPU"
        raise SpikedetError(f"device={device}: this machine has {have}; use device=cpu")
