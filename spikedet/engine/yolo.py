"""SpikeYOLO: spikedet's detector with Ultralytics' ``Model`` API (train, val, predict, export, ...).

:class:`SpikeYOLO`'s ``task_map`` names spikedet's model, trainer and validator, so ``SpikeYOLO(...).train()``,
``.val()`` and ``.predict()`` run Ultralytics' own loops. Checkpoints pickle the module as Ultralytics does, so a trained ``.pt`` loads through
``SpikeYOLO(path)`` and through plain ``ultralytics.YOLO(path)`` wherever spikedet is importable; every other
format (safetensors, YOLOv5 checkpoints, names in ``weights/``) loads through :func:`spikedet.io.weights.load_model`.

    >>> model = SpikeYOLO("spikeyolo-t.yaml")
    >>> type(model.model).__name__
    'SpikeDetectionModel'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.cfg import DEFAULT_CFG_DICT  # noqa: E402
from ultralytics.engine.model import Model  # noqa: E402
from ultralytics.utils import RANK  # noqa: E402

from spikedet.assets import resolve_data, resolve_weights  # noqa: E402
from spikedet.engine.predict import SpikeDetectionPredictor  # noqa: E402
from spikedet.engine.train import SpikeDetectionTrainer  # noqa: E402
from spikedet.engine.val import SpikeDetectionValidator  # noqa: E402
from spikedet.io.images import read_image  # noqa: E402
from spikedet.io.weights import check_zip, load_model, readable, weights_format  # noqa: E402
from spikedet.model.builder import load_model_cfg  # noqa: E402
from spikedet.model.detection import SpikeDetectionModel  # noqa: E402


class SpikeYOLO(Model):
    """A spiking detector with Ultralytics' ``Model`` API.

    Args:
        model: a model YAML (``spikeyolo-s.yaml``: a new model) or weights (a path or a file in ``weights/``):
            an Ultralytics ``.pt`` checkpoint (a pickle: load only files you trust), spikedet ``.safetensors``
            or a YOLOv5 ``.pt``.

    Examples:
        >>> model = SpikeYOLO("spikeyolo-t.yaml")
        >>> model.train(data="coco8.yaml", epochs=1, imgsz=320)      # doctest: +SKIP
        >>> results = model.predict("bus.jpg")                       # doctest: +SKIP
    """

    def __init__(self, model: str | Path = "spikeyolo-n.yaml", task: str | None = None, verbose: bool = False):
        super().__init__(model=model, task=task or "detect", verbose=verbose)

    @property
    def task_map(self) -> dict:
        return {
            "detect": {
                "model": SpikeDetectionModel,
                "trainer": SpikeDetectionTrainer,
                "validator": SpikeDetectionValidator,
                "predictor": SpikeDetectionPredictor,
            }
        }

    def train(self, trainer=None, **kwargs):
        """Ultralytics' ``train``, with data names looked up as spikedet does (a path, else ``data/``)."""
        return super().train(trainer=trainer, **_resolve_data_arg(kwargs))

    def val(self, validator=None, **kwargs):
        """Ultralytics' ``val``, with data names looked up as spikedet does (a path, else ``data/``)."""
        return super().val(validator=validator, **_resolve_data_arg(kwargs))

    def predict_files(self, files: Iterable[str | Path], **kwargs) -> Iterator[tuple[str | Path, object]]:
        """``(file, Results)`` for each image file, one forward pass per image.

        Each image is letterboxed on its own (the minimal rectangle, as ``predict``, the demo and the service
        do), so per-image figures such as energy do not depend on which other images were passed along.
        """
        for file in files:
            yield file, self.predict(read_image(file), verbose=False, **kwargs)[0]

    def _load(self, weights: str, task: str | None = None) -> None:
        """spikedet's formats (safetensors, YOLOv5 and SpikeYOLO checkpoints) load through spikedet's loader, which
        runs no pickle; Ultralytics' ``.pt`` checkpoints (with their training state) and exported models as
        Ultralytics loads them.

        A loaded model is the checkpoint ``train()`` starts from (``ckpt`` holds it, as for Ultralytics' own
        object loads): ``SpikeYOLO("their_spikeyolo.pt").train(...)`` fine-tunes their weights, neurons unchanged.
        """
        path = resolve_weights(weights)
        if weights_format(path) not in ("safetensors", "yolov5", "spikeyolo"):
            if path.suffix.lower() == ".pt":
                check_zip(path)
            with readable(path):
                super()._load(str(path), task)
            return
        self.model = load_model(path, allow_pickle=True)
        self.ckpt = {"model": self.model}
        self.task = "detect"
        self.ckpt_path = str(path)
        self.overrides = {"model": str(path), "task": "detect", "imgsz": 640}
        self.model.args = {**DEFAULT_CFG_DICT, **self.overrides}
        self.model.task = "detect"
        self.model_name = str(path)

    def _new(self, cfg: str, task: str | None = None, verbose: bool = False) -> None:
        cfg_dict = load_model_cfg(cfg)
        self.cfg = cfg
        self.task = task or "detect"
        self.model = SpikeDetectionModel(cfg_dict, verbose=verbose and RANK == -1)
        self.overrides["model"] = self.cfg
        self.overrides["task"] = self.task
        self.model.args = {**DEFAULT_CFG_DICT, **self.overrides}
        self.model.task = self.task
        self.model_name = cfg


def _resolve_data_arg(kwargs: dict) -> dict:
    data = kwargs.get("data")
    if isinstance(data, (str, Path)) and str(data):
        kwargs = {**kwargs, "data": resolve_data(data)}
    return kwargs
