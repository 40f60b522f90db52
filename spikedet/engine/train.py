"""Training on Ultralytics' own loop: the detection trainer, building spikedet's model.

Everything else (data, augmentation, loss, optimiser, EMA, checkpoints, resume, multi-GPU DDP) is
Ultralytics' trainer; Ultralytics' launcher imports this module by name in each DDP process. On top of it:

- precision (:mod:`spikedet.engine.amp`): the AMP self-check runs on spikedet's model (no download), the
  validation inside training runs spiking networks in float32, and ``amp='bf16'`` is refused for neurons with
  more than 256 codes;
- distributed training (:mod:`spikedet.engine.distributed`): several nodes under ``torchrun`` (the world size is
  ``WORLD_SIZE``, not the local device count) and CPU processes over gloo.
"""

from __future__ import annotations

from copy import copy

import torch

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.cfg import DEFAULT_CFG  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOCAL_RANK, LOGGER, RANK  # noqa: E402
from ultralytics.utils.torch_utils import strip_optimizer, torch_distributed_zero_first  # noqa: E402

from spikedet.engine import amp, distributed  # noqa: E402
from spikedet.engine.val import SpikeDetectionValidator  # noqa: E402
from spikedet.io.weights import load_model  # noqa: E402
from spikedet.model.detection import SpikeDetectionModel  # noqa: E402


class SpikeDetectionTrainer(DetectionTrainer):
    """Ultralytics' detection trainer building :class:`SpikeDetectionModel` (see the module docstring)."""

    #: The world size kept aside on CPU while Ultralytics' GPU-only DDP wrap is passed (see :meth:`_setup_train`).
    _cpu_world_size: int = 0

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        super().__init__(cfg, overrides, _callbacks)
        launched = distributed.launched_world_size()
        if launched:
            # A process torchrun started: the world is every process of every node. Ultralytics counts the devices
            # named on this node (0 on CPU), which is the world only for one node of GPUs.
            self.world_size = launched

    @property
    def cpu_distributed(self) -> bool:
        """Whether this is one of several CPU processes training together (gloo)."""
        return self.world_size > 1 and self.device.type == "cpu"

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

    def setup_model(self):
        ckpt = super().setup_model()
        amp.check_training_precision(self.model, self.args.amp)
        return ckpt

    def _setup_ddp(self):
        if self.device.type != "cpu":
            return super()._setup_ddp()
        distributed.init_cpu_process_group(RANK, self.world_size)

    def _setup_train(self):
        if self.cpu_distributed:
            # Ultralytics wraps the model in DDP with device_ids=[device.index], which a CPU module refuses. The
            # world size is kept aside until that wrap is passed; _build_train_pipeline, the step right after it,
            # restores it and does what was passed over: the AMP broadcast, a CPU scaler and a CPU DDP wrap.
            self._cpu_world_size, self.world_size = self.world_size, 1
        # Ultralytics' AMP self-check downloads a YOLO model on CUDA; spikedet checks AMP on its own model.
        with amp.spikedet_amp_check():
            return super()._setup_train()

    def _build_train_pipeline(self):
        if self._cpu_world_size:
            self.world_size, self._cpu_world_size = self._cpu_world_size, 0
            self.amp = distributed.broadcast_flag(self.amp)  # rank 0's AMP check decides for all (off on CPU)
            self.scaler = torch.amp.GradScaler("cpu", enabled=self.amp and self.args.amp != "bf16")
            self.model = distributed.wrap_cpu_model(self.model, compiled=bool(self.args.compile))
        super()._build_train_pipeline()

    def final_eval(self):
        if not self.cpu_distributed:
            return super().final_eval()
        # Ultralytics validates best.pt in its standalone validator, which takes a CUDA device on every DDP rank. On
        # CPU ranks best.pt's weights go into every rank's EMA (read on rank 0, broadcast) and are validated the way
        # training validates: each rank a share of the images, the statistics gathered on rank 0.
        with torch_distributed_zero_first(LOCAL_RANK):  # rank 0 strips the optimizer; the others wait
            if RANK == 0 and self.last.exists():
                ckpt = strip_optimizer(self.last)
                if self.best.exists():
                    strip_optimizer(self.best, updates={"train_results": ckpt.get("train_results")})
        if RANK == 0 and self.best.exists():
            LOGGER.info(f"\nValidating {self.best}...")
            self.ema.ema.load_state_dict(load_model(self.best, allow_pickle=True).float().state_dict())
        distributed.broadcast_state(self.ema.ema, src=0)
        self.metrics, _ = self.validate()
        self.epoch += 1  # log the final metrics at step epochs + 1, as Ultralytics does
        self.run_callbacks("on_fit_epoch_end")
        self.epoch -= 1
