"""Precision rules: metrics of spiking networks in float32 even when float16 is asked for, no bfloat16 training for
neurons above 256 codes, and the AMP self-check on spikedet's own model."""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace

import pytest
import torch

from spikedet.engine import amp
from spikedet.errors import SpikedetError
from spikedet.model.builder import load_model_cfg
from spikedet.model.detection import SpikeDetectionModel
from spikedet.snn.neurons import IBRALIF, ILIF, SpikingNeuron


@pytest.fixture
def ultralytics_warnings():
    """Warnings Ultralytics' LOGGER emits during the test (it does not propagate to the root logger)."""
    from ultralytics.utils import LOGGER

    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    LOGGER.addHandler(handler)
    yield records
    LOGGER.removeHandler(handler)


def _model_with_neuron(spec: dict) -> SpikeDetectionModel:
    cfg = load_model_cfg("spikeyolo-t.yaml")
    cfg["neuron"] = spec
    return SpikeDetectionModel(cfg, verbose=False)


def _record_first_neuron_inputs(model: torch.nn.Module, seen: list[tuple[torch.dtype, bool]]):
    """Appends (input dtype, autocast on) at the first neuron to ``seen`` on every forward pass (the hook survives
    deepcopy); returns the hook's handle."""
    neuron = next(m for m in model.modules() if isinstance(m, SpikingNeuron))
    return neuron.register_forward_pre_hook(
        lambda module, args: seen.append((args[0].dtype, torch.is_autocast_enabled(args[0].device.type)))
    )


def test_bfloat16_training_is_refused_for_neurons_whose_codes_it_merges():
    with pytest.raises(SpikedetError, match=r"amp='bf16' merges neuron codes: .* codes from 202 up \(of 0..511, N=100\)"):
        amp.check_training_precision(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False), "bf16")
    amp.check_training_precision(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False), True)  # float16 AMP: fine
    amp.check_training_precision(_model_with_neuron({"type": "ILIF", "D": 4, "T": 1}), "bf16")  # 4 codes: kept
    with pytest.raises(SpikedetError, match="codes from 202 up"):  # 255 codes, but N = 100 is no power of two
        amp.check_training_precision(_model_with_neuron({"type": "IBRALIF", "D": 2.55, "N": 100, "T": 1}), "bf16")


def test_the_trainer_refuses_bfloat16_before_training(tmp_path, coco8_yaml):
    from spikedet.engine.train import SpikeDetectionTrainer

    trainer = SpikeDetectionTrainer(overrides=dict(
        model="spikeyolo-t.yaml", data=coco8_yaml, amp="bf16", device="cpu", epochs=1, imgsz=64, batch=4,
        workers=0, project=str(tmp_path), name="bf16", plots=False,
    ))
    with pytest.raises(SpikedetError, match="amp='bf16'"):
        trainer.train()
    assert not (tmp_path / "bf16" / "weights" / "last.pt").exists()


def test_a_neuron_warns_when_half_precision_merges_its_codes():
    x = torch.linspace(0, 5.2, 1000).reshape(1, -1)
    with pytest.warns(UserWarning, match=r"bfloat16 merges this neuron's codes from 202 up \(L=511, N=100\)"):
        out = IBRALIF(D=5.11, N=100)(x.bfloat16())
    assert len(torch.unique(out.float())) < 512  # the warning is true: fewer levels come out than the 512 codes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(torch.unique(IBRALIF(D=5.11, N=100)(x.half()).float())) == 512  # float16 keeps them all
        ILIF(D=4)(x.bfloat16())  # 4 codes: bfloat16 keeps them


@pytest.mark.parametrize("setting", [{"half": True}, {"quantize": 16}])
def test_val_asked_for_float16_measures_a_spiking_network_in_float32(setting, coco8_yaml, tmp_path,
                                                                      ultralytics_warnings):
    from spikedet.engine.yolo import SpikeYOLO

    model = SpikeYOLO("spikeyolo-t.yaml")
    seen = []
    _record_first_neuron_inputs(model.model, seen)
    model.val(data=coco8_yaml, imgsz=64, batch=4, workers=0, device="cpu", project=str(tmp_path), name="v",
              plots=False, **setting)
    assert seen and all(dtype == torch.float32 and not autocast for dtype, autocast in seen)
    assert any("mAP of spiking networks in float32" in w for w in ultralytics_warnings), ultralytics_warnings


def test_predict_asked_for_float16_runs_a_spiking_network_in_float32(coco8_val_images, ultralytics_warnings):
    from spikedet.engine.yolo import SpikeYOLO

    model = SpikeYOLO("spikeyolo-t.yaml")
    seen = []
    _record_first_neuron_inputs(model.model, seen)
    model.predict(next(coco8_val_images.glob("*.jpg")), imgsz=64, device="cpu", half=True, verbose=False)
    assert seen and all(dtype == torch.float32 for dtype, _ in seen)
    assert any("detections and energy of spiking networks in float32" in w for w in ultralytics_warnings)


def test_float16_requests_are_kept_for_networks_without_neurons():
    ann = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    args = SimpleNamespace(quantize=16)
    assert not amp.keep_float32(args, ann, "mAP") and args.quantize == 16
    args = SimpleNamespace(quantize=16)
    assert amp.keep_float32(args, SpikeDetectionModel("spikeyolo-t.yaml", verbose=False), "mAP")
    assert args.quantize is None


def test_validation_inside_training_reads_amp_off_for_a_spiking_network():
    """Ultralytics' validator validates under float16 autocast on a GPU when ``trainer.amp`` is on."""
    spiking = SimpleNamespace(amp=True, ema=SimpleNamespace(ema=SpikeDetectionModel("spikeyolo-t.yaml", verbose=False)))
    with amp.float32_validation(spiking):
        assert spiking.amp is False
    assert spiking.amp is True  # training goes on with AMP
    ann = SimpleNamespace(amp=True, ema=SimpleNamespace(ema=torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))))
    with amp.float32_validation(ann):
        assert ann.amp is True


def test_a_training_run_with_amp_on_validates_in_float32(tmp_path, coco8_yaml):
    """AMP forced on (a CPU has no float16 AMP: training runs under CPU autocast): every validation forward pass
    of the training run is float32 without autocast, and the trainer's AMP setting is back on afterwards."""
    from spikedet.engine.train import SpikeDetectionTrainer

    trainer = SpikeDetectionTrainer(overrides=dict(
        model="spikeyolo-t.yaml", data=coco8_yaml, device="cpu", epochs=1, imgsz=64, batch=4, workers=0,
        project=str(tmp_path), name="amp", plots=False, val=True,
    ))
    seen, amp_at_validation, hooks = [], [], []

    def force_amp(t):
        t.amp = True
        hooks.append(_record_first_neuron_inputs(t.ema.ema, seen))

    trainer.add_callback("on_pretrain_routine_end", force_amp)

    def at_validation(validator):  # inside training, and the final validation of best.pt
        amp_at_validation.append((validator.training and trainer.amp, validator.args.quantize))

    trainer.add_callback("on_val_start", at_validation)
    trainer.add_callback("on_val_end", lambda validator: [h.remove() for h in hooks])  # before the checkpoint
    with pytest.warns(UserWarning, match="bfloat16"):  # the training steps ran under CPU autocast (bfloat16)
        trainer.train()
    assert len(amp_at_validation) == 2 and all(a == (False, None) for a in amp_at_validation), amp_at_validation
    assert seen and all(dtype == torch.float32 and not autocast for dtype, autocast in seen)
    assert trainer.amp is True
