"""Precision rules of training and of every metric spikedet reports.

- **Metrics in float32.** A spiking network's codes are ``round(U * N)``: float16 moves some ``U`` across a
  rounding boundary, and the flips cascade (``benchmarks/precision.py`` measures how many). Ultralytics validates in float16 on a GPU (under autocast inside training
  when AMP is on; with ``half=True`` / ``quantize=16`` in ``val`` and ``predict``). spikedet validates and
  predicts spiking networks in float32 (:func:`float32_validation`, :func:`keep_float32`), so the mAP and the
  energy it reports are those of the network that gets converted.
- **No bfloat16 training of neurons whose codes it merges** (:func:`check_training_precision`): bfloat16 keeps
  8 significant bits, so no code above 256 survives, and IBRA-LIF's values ``q / 100`` merge from code 202 up
  (:meth:`~spikedet.snn.code.SpikeCode.first_merged_code`).
- **An AMP self-check that needs no download.** Ultralytics checks AMP on CUDA by downloading a YOLO model and
  comparing its FP32 and AMP detections. spikedet runs the same comparison on the model being trained: one
  forward pass on a fixed image in FP32 and under autocast; AMP stays on when the raw head outputs agree.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from ultralytics.engine import trainer as ultralytics_trainer
from ultralytics.utils import LOGGER, colorstr

from spikedet.errors import SpikedetError
from spikedet.nn.mode import has_neurons
from spikedet.snn.code import fmt_number
from spikedet.snn.neurons import SpikingNeuron

#: Why spiking networks are measured in float32 (logged when a float16 request is set aside).
FLOAT32_REASON = "float16 flips neuron codes and the flips cascade"


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


def is_spiking(model: torch.nn.Module | str | Path | None) -> bool:
    """Whether ``model`` has spiking neurons; a model given by name or path (not loaded yet) counts as spiking,
    since spikedet's engine serves spikedet's models."""
    return has_neurons(model) if isinstance(model, torch.nn.Module) else True


def keep_float32(args, model: torch.nn.Module | str | Path | None, what: str) -> bool:
    """Set aside a float16 request (``half=True`` / ``quantize=16`` in ``args``) for a spiking ``model``, with a
    warning naming ``what`` is measured; True if one was set aside."""
    if args.quantize != 16 or not is_spiking(model):
        return False
    LOGGER.warning(f"spikedet computes the {what} of spiking networks in float32 ({FLOAT32_REASON}): "
                   "half / quantize=16 ignored")
    args.quantize = None
    return True


@contextlib.contextmanager
def float32_validation(trainer):
    """Within the block, the validation inside training runs a spiking model in float32.

    Ultralytics' validator reads ``trainer.amp`` to validate under float16 autocast; it reads False here, and
    its AMP setting is restored afterwards.
    """
    amp = trainer.amp
    if amp and is_spiking(trainer.ema.ema if trainer.ema else trainer.model):
        trainer.amp = False
    try:
        yield
    finally:
        trainer.amp = amp


def check_training_precision(model: torch.nn.Module, amp_setting) -> None:
    """Refuse bfloat16 training (``amp='bf16'``) of a model with a neuron whose codes bfloat16 merges."""
    if amp_setting != "bf16":
        return
    for m in model.modules():
        if isinstance(m, SpikingNeuron) and (merged := m.code.first_merged_code(torch.bfloat16)) is not None:
            raise SpikedetError(
                f"amp='bf16' merges neuron codes: bfloat16 keeps 8 significant bits, so codes from {merged} up (of "
                f"0..{m.L}, N={fmt_number(m.code.n)}) round onto their neighbours; train with amp=True (float16 with "
                "loss scaling) or amp=False"
            )
