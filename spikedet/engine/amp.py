"""An AMP self-check that needs no download.

Ultralytics checks automatic mixed precision on CUDA by downloading a YOLO model and comparing its FP32
and AMP detections. spikedet runs the same comparison on the model being trained: one forward pass on
a fixed image in FP32 and under autocast; AMP stays on when the raw head outputs agree.
"""

from __future__ import annotations

import contextlib

import torch
from ultralytics.engine import trainer as ultralytics_trainer
from ultralytics.utils import LOGGER, colorstr


def check_amp_on_model(model: torch.nn.Module) -> bool:
    """True if AMP is safe for ``model`` on its device (always False on CPU and MPS, as Ultralytics does)."""
    device = next(model.parameters()).device
    if device.type in {"cpu", "mps"}:
        return False
    prefix = colorstr("AMP: ")
    was_training = model.training
    try:
        model.eval()
        generator = torch.Generator(device="cpu").manual_seed(0)
        image = torch.rand(2, 3, 256, 256, generator=generator).to(device)
        with torch.no_grad():
            reference = model(image)[0].float()
            with torch.autocast(device_type=device.type, enabled=True):
                mixed = model(image)[0].float()
        ok = bool(torch.isfinite(mixed).all()) and torch.allclose(reference, mixed, rtol=0.05, atol=0.5)
    finally:
        model.train(was_training)
    if ok:
        LOGGER.info(f"{prefix}checks passed on the spiking model")
    else:
        LOGGER.warning(f"{prefix}FP32 and AMP outputs disagree on this model: AMP disabled")
    return ok


@contextlib.contextmanager
def spikedet_amp_check():
    """Within the block, Ultralytics' trainer uses :func:`check_amp_on_model` instead of its own check."""
    original = ultralytics_trainer.check_amp
    ultralytics_trainer.check_amp = check_amp_on_model
    try:
        yield
    finally:
        ultralytics_trainer.check_amp = original
