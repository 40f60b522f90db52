"""spikedet's detector on Ultralytics' engine, by subclassing only.

- :class:`SpikeDetectionModel` is a ``DetectionModel`` built by spikedet's own YAML builder and registry.
- :class:`SpikeDetectionTrainer` builds it in ``get_model``; :class:`SpikeDetectionValidator` adds the
  official COCO evaluation; prediction uses Ultralytics' ``DetectionPredictor`` unchanged.
- :class:`SpikeYOLO` is a ``Model`` whose ``task_map`` names these classes, so ``SpikeYOLO(...).train()``,
  ``.val()`` and ``.predict()`` run Ultralytics' own loops.

Checkpoints pickle the module as Ultralytics does, so a trained ``.pt`` loads through ``SpikeYOLO(path)``
and through plain ``ultralytics.YOLO(path)`` wherever spikedet is importable.
"""

from __future__ import annotations

import contextlib
from copy import copy
from pathlib import Path

import torch
from torch import nn

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.engine.model import Model  # noqa: E402
from ultralytics.models.yolo.detect import DetectionPredictor, DetectionTrainer, DetectionValidator  # noqa: E402
from ultralytics.nn.modules.head import Detect  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.utils import LOGGER, RANK  # noqa: E402
from ultralytics.utils.torch_utils import initialize_weights  # noqa: E402

from spikedet.builder import build_layers, load_model_cfg  # noqa: E402
from spikedet.neurons import SpikingNeuron  # noqa: E402


class SpikeDetectionModel(DetectionModel):
    """A detection model whose layers come from spikedet's builder (see :mod:`spikedet.builder`).

    Args:
        cfg: a model name (``spikeyolo-s.yaml``), a YAML path, or a config dict.
        ch: image channels.
        nc: number of classes (overrides the YAML's ``nc``).
    """

    def __init__(self, cfg: str | Path | dict = "spikeyolo-n.yaml", ch: int = 3, nc: int | None = None, verbose: bool = True):
        nn.Module.__init__(self)  # DetectionModel.__init__ would call Ultralytics' parse_model
        self.yaml = load_model_cfg(cfg)
        self.yaml["channels"] = ch
        if nc and nc != self.yaml["nc"]:
            LOGGER.info(f"Overriding model.yaml nc={self.yaml['nc']} with nc={nc}")
            self.yaml["nc"] = nc
        self.model, self.save = build_layers(self.yaml, ch=ch, verbose=verbose and RANK in {-1, 0})
        self.names = {i: f"{i}" for i in range(self.yaml["nc"])}
        self.inplace = self.yaml.get("inplace", True)
        self.reparameterized = False

        head = self.model[-1]
        if not isinstance(head, Detect):
            raise ValueError(f"the last layer of a detection model must be a Detect head, got {type(head).__name__}")
        s = 256  # twice the largest stride
        head.inplace = self.inplace
        self.model.eval()
        head.training = True  # the head returns its raw dict, whose feature maps give the strides
        with torch.no_grad():
            feats = self.forward(torch.zeros(1, ch, s, s))["feats"]
        head.stride = torch.tensor([s / x.shape[-2] for x in feats])
        self.stride = head.stride
        self.model.train()
        head.bias_init()
        initialize_weights(self)
        if verbose and RANK in {-1, 0}:
            self.info()
            LOGGER.info("")

    # -- re-parameterization ---------------------------------------------------------------------
    @torch.no_grad()
    def reparameterize(self) -> "SpikeDetectionModel":
        """Merge RepConv and SepConv tails into single 3x3 convs and fold every BN into its conv (in place).

        Each spiking unit becomes ``neuron -> conv (with bias)``: the network that runs on spikes, that the
        converter turns into bit planes and that the operation counts use. Call it on an eval-mode model.
        """
        for unit in self.modules():
            if _mergeable(unit):
                unit.reparameterize()
        self.reparameterized = True
        return self

    def fuse(self, verbose: bool = True, imgsz: int = 640) -> "SpikeDetectionModel":
        """Ultralytics' inference hook: here it re-parameterizes (the spiking equivalent of Conv+BN fusion)."""
        if not self.is_fused():
            self.reparameterize()
            if verbose:
                self.info(verbose=verbose, imgsz=imgsz)
        return self

    def is_fused(self) -> bool:
        return all(unit.reparameterized for unit in self.modules() if _mergeable(unit))

    def load(self, weights, verbose: bool = True) -> None:
        """Transfer matching tensors from a checkpoint dict or model (Ultralytics' hook for pretrained weights).

        Ultralytics' own version reads the internals of its Detect head; this one matches by name and shape.
        """
        source = (weights.get("ema") or weights["model"]) if isinstance(weights, dict) else weights
        theirs = source.float().state_dict()
        ours = self.state_dict()
        matched = {k: v for k, v in theirs.items() if k in ours and v.shape == ours[k].shape}
        self.load_state_dict(matched, strict=False)
        names = getattr(source, "names", None)
        if len(matched) == len(ours) and names and self.names == {i: str(i) for i in range(len(self.names))}:
            self.names = dict(names)
        if verbose:
            LOGGER.info(f"Transferred {len(matched)}/{len(ours)} items from pretrained weights")

    def neurons(self) -> list[tuple[str, SpikingNeuron]]:
        """All spiking neurons with their module names, in forward order of definition."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, SpikingNeuron)]

    def init_criterion(self):
        from ultralytics.utils.loss import v8DetectionLoss

        head = self.model[-1]
        if not getattr(head, "trainable", True):
            from spikedet.errors import SpikedetError

            raise SpikedetError(f"{type(head).__name__} heads have no training loss in spikedet (inference only)")
        return v8DetectionLoss(self)


def _mergeable(module: nn.Module) -> bool:
    """Blocks that merge their convs and BNs: spiking units and any block with the same protocol."""
    return callable(getattr(module, "reparameterize", None)) and hasattr(module, "reparameterized") and not isinstance(module, DetectionModel)


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
        from spikedet import amp

        with amp.spikedet_amp_check():
            return super()._setup_train()


class SpikeDetectionValidator(DetectionValidator):
    """Ultralytics' detection validator plus the official COCO evaluation (pycocotools) after a standalone val.

    Predictions are collected with COCO category ids (91-id space for COCO's classes) and scored against the
    data YAML's ``coco_json`` when given, else against ground truth built from the YOLO labels. The twelve
    COCO numbers land in ``self.coco_stats`` and in the returned stats as ``coco/AP`` ... ``coco/ARl``.
    """

    coco_stats: dict | None = None

    def init_metrics(self, model) -> None:
        if not self.training:
            self.args.save_json = True  # predictions.json feeds the COCO evaluation
        super().init_metrics(model)
        from spikedet.coco import category_ids

        self.class_map = category_ids(model.names)
        # spikedet runs pycocotools itself (eval_json); Ultralytics' own JSON path stays off.
        self.is_custom_json, self.build_gdict, self.gdict = False, False, None

    def print_results(self) -> None:
        super().print_results()
        if not self.training and not self.jdict:  # Ultralytics skips eval_json when nothing was detected
            from spikedet.coco import STAT_NAMES

            self.coco_stats = {k: 0.0 for k in STAT_NAMES}
            self.metrics.coco = self.coco_stats
            LOGGER.info("pycocotools COCOeval: no detections, every COCO metric is 0")

    def eval_json(self, stats: dict) -> dict:
        if self.training:
            return stats
        import json

        from spikedet import coco

        dataset = self.dataloader.dataset
        files = list(dataset.im_files)
        gt_file = self.data.get("coco_json")
        if gt_file:
            gt_path = Path(gt_file) if Path(gt_file).is_absolute() else Path(self.data["path"]) / gt_file
            if not gt_path.is_file():
                LOGGER.warning(f"coco_json {str(gt_path)!r} not found: COCO evaluation uses the YOLO labels")
                gt_file = None
        if gt_file:
            ground_truth = json.loads(gt_path.read_text())
            source = str(gt_path)
        else:
            ground_truth = coco.gt_from_yolo_labels(
                ((lb["im_file"], lb.get("shape") or _image_shape(lb["im_file"]), lb["cls"], lb["bboxes"]) for lb in dataset.labels),
                self.names,
            )
            (self.save_dir / "ground_truth.json").write_text(json.dumps(ground_truth))
            source = "YOLO labels"
        by_name = {Path(f).name: i for f, i in zip(files, coco.image_ids(files))}
        predictions = [{**p, "image_id": by_name.get(p["file_name"], p["image_id"])} for p in self.jdict]
        self.coco_stats, summary = coco.evaluate(predictions, ground_truth, image_ids=by_name.values())
        LOGGER.info(f"\npycocotools COCOeval (bbox) against {source}:\n{summary}")
        stats.update({f"coco/{k}": v for k, v in self.coco_stats.items()})
        self.metrics.coco = self.coco_stats  # Model.val() returns these metrics
        return stats


def _resolve_data_arg(kwargs: dict) -> dict:
    data = kwargs.get("data")
    if isinstance(data, (str, Path)) and str(data):
        from spikedet.assets import resolve_data

        kwargs = {**kwargs, "data": resolve_data(data)}
    return kwargs


def _image_shape(file: str) -> tuple[int, int]:
    """(height, width) of an image as Ultralytics reads it (EXIF orientation applied), from its header."""
    from PIL import Image
    from ultralytics.data.utils import exif_size

    with Image.open(file) as im:
        w, h = exif_size(im)
    return h, w


class SpikeYOLO(Model):
    """A spiking detector with Ultralytics' ``Model`` API.

    Examples:
        >>> model = SpikeYOLO("spikeyolo-t.yaml")
        >>> model.train(data="coco8.yaml", epochs=1, imgsz=320)      # doctest: +SKIP
        >>> results = model.predict("bus.jpg")                       # doctest: +SKIP
    """

    def __init__(self, model: str | Path | nn.Module = "spikeyolo-n.yaml", task: str | None = None, verbose: bool = False):
        if isinstance(model, nn.Module):  # adopt an in-memory model (e.g. a freshly converted one)
            object.__setattr__(self, "_adopt", model)
            model = "in-memory.safetensors"
        super().__init__(model=model, task=task or "detect", verbose=verbose)

    @property
    def task_map(self) -> dict:
        return {
            "detect": {
                "model": SpikeDetectionModel,
                "trainer": SpikeDetectionTrainer,
                "validator": SpikeDetectionValidator,
                "predictor": DetectionPredictor,
            }
        }

    def train(self, trainer=None, **kwargs):
        """Ultralytics' ``train``, with data names looked up as spikedet does (a path, else ``data/``)."""
        return super().train(trainer=trainer, **_resolve_data_arg(kwargs))

    def val(self, validator=None, **kwargs):
        """Ultralytics' ``val``, with data names looked up as spikedet does (a path, else ``data/``)."""
        return super().val(validator=validator, **_resolve_data_arg(kwargs))

    def _load(self, weights: str, task: str | None = None) -> None:
        """``.safetensors`` files are spikedet's own (no pickle); anything else goes to Ultralytics."""
        if str(weights).lower().endswith(".safetensors"):
            from ultralytics.cfg import DEFAULT_CFG_DICT

            from spikedet.weights import load_safetensors

            adopted = self.__dict__.pop("_adopt", None)
            self.model = adopted if adopted is not None else load_safetensors(weights)
            self.ckpt = {}
            self.task = "detect"
            self.ckpt_path = str(weights)
            self.overrides = {"model": str(weights), "task": "detect", "imgsz": 640}
            self.model.args = {**DEFAULT_CFG_DICT, **self.overrides}
            self.model.task = "detect"
            self.model_name = str(weights)
            return
        super()._load(weights, task)

    def _new(self, cfg: str, task: str | None = None, verbose: bool = False) -> None:
        cfg_dict = load_model_cfg(cfg)
        self.cfg = cfg
        self.task = task or "detect"
        self.model = SpikeDetectionModel(cfg_dict, verbose=verbose and RANK == -1)
        self.overrides["model"] = self.cfg
        self.overrides["task"] = self.task
        from ultralytics.cfg import DEFAULT_CFG_DICT

        self.model.args = {**DEFAULT_CFG_DICT, **self.overrides}
        self.model.task = self.task
        self.model_name = cfg


def unwrap(model) -> nn.Module:
    """The ``nn.Module`` inside a ``Model`` wrapper (or the module itself)."""
    with contextlib.suppress(AttributeError):
        return model.model if isinstance(model, Model) else model
    return model
