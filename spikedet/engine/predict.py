"""Prediction on Ultralytics' own loop: the detection predictor, running a converted model as it is.

Ultralytics' predictor runs a deep copy of the model it is given (fusing and moving would otherwise change
the user's module). A converted model is already the deployed network (re-parameterized, its codes folded
into the weights: fusing is a no-op), and the forward hooks that count its energy and analyse its codes
(:func:`spikedet.measure.energy.measure`) are installed on that very module, so it runs as it is.

A spiking network predicts in float32 (``half=True`` is set aside, as in validation): the detections and the
energy reported are those of the network itself (:mod:`spikedet.engine.amp`).
"""

from __future__ import annotations

from torch import nn

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionPredictor  # noqa: E402
from ultralytics.nn.autobackend import AutoBackend  # noqa: E402
from ultralytics.utils.torch_utils import attempt_compile, select_device  # noqa: E402

from spikedet.engine import amp  # noqa: E402
from spikedet.nn.mode import is_converted  # noqa: E402


class SpikeDetectionPredictor(DetectionPredictor):
    """Ultralytics' detection predictor; a converted model is run itself, not a copy (see the module docstring)."""

    def setup_model(self, model, verbose: bool = True) -> None:
        amp.keep_float32(self.args, model, "detections and energy")  # as val does: see spikedet.engine.amp
        if not (isinstance(model, nn.Module) and is_converted(model)):
            super().setup_model(model, verbose)
            return
        self.model = AutoBackend(
            model=model,
            device=select_device(self.args.device, verbose=verbose),
            dnn=self.args.dnn,
            data=self.args.data,
            fp16=False,  # a converted model has neurons: spiking networks predict in float32 (engine/amp.py)
            channels_last=self.args.channels_last,
            fuse=True,
            verbose=verbose,
            end2end=self.args.nms is False,
        )
        self.device = self.model.device
        self.model.eval()
        self.model = attempt_compile(self.model, device=self.device, mode=self.args.compile)
