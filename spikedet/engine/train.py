"""Training on Ultralytics' own loop: the detection trainer, building spikedet's model.

Everything else (data, augmentation, loss, optimiser, EMA, checkpoints, resume, multi-GPU DDP) is
Ultralytics' trainer, unchanged; Ultralytics' launcher imports this module by name in each DDP process.
"""

from __future__ import annotations

from copy import copy

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import RANK  # noqa: E402

from spikedet.engine import amp  # noqa: E402
from spikedet.engine.val import SpikeDetectionValidator  # noqa: E402
from spikedet.model.detection import SpikeDetectionModel  # noqa: E402


class SpikeDetectionTrainer(DetectionTrainer):
    """Ultralytics' detection trainer building :class:`SpikeDetectionModel`."""

    def get_model(self, cfg=None, weights=None, verbose: bool = True) -> SpikeDetectionModel:
        model = self.set_model_names_for_load(
            SpikeDetectionModel(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        )
        if weights:
            model.load(weights)
        return model

    def get_validator(self):
        self.loss_names = "box_loss", "cls_loss", "dfl_loss"
        return SpikeDetectionValidator(self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks)

    def _setup_train(self):
        # Ultralytics' AMP self-check downloads a YOLO model on CUDA; spikedet checks AMP on its own model.
        with amp.spikedet_amp_check():
            return super()._setup_train()
