"""One object for applications: load weights once, then detect objects and estimate energy per image.

    >>> from spikedet.detector import Detector
    >>> det = Detector("yolov5n-a2s.safetensors")                 # doctest: +SKIP
    >>> result = det.detect(cv2.imread("bus.jpg"))                # doctest: +SKIP
    >>> result.to_dict()["energy"]["efficiency"]                  # doctest: +SKIP

The model runs in spike mode on the integer path (the fast path; same spikes as the bit-plane simulation),
so every detection comes with the energy report of the spikes that produced it. The service, the webcam
demo and ``spikedet demo`` use this class; it is safe to share between threads (calls are serialised).
:class:`Detection`, :func:`detections` (the one mapping from Ultralytics' ``Results``) and the one JSON record
of an image live in :mod:`spikedet.engine.results` (``predict`` and ``energy`` use them too).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikedet.convert.bitplane import spiking
from spikedet.engine.device import select_device
from spikedet.engine.results import Detection, detections, image_record
from spikedet.engine.yolo import SpikeYOLO
from spikedet.errors import SpikedetError
from spikedet.io.images import check_imgsz, model_stride
from spikedet.io.weights import resolve
from spikedet.measure import energy
from spikedet.model.detection import describe_model

__all__ = ["Detection", "DetectionResult", "Detector", "detections"]


@dataclass
class DetectionResult:
    width: int
    height: int
    detections: list[Detection]
    energy: energy.EnergyReport
    timing_ms: dict[str, float]
    model: dict = field(default_factory=dict)

    def to_dict(self, layers: bool = False) -> dict:
        record = image_record(self.width, self.height, self.detections, energy=self.energy.to_dict(layers=layers))
        return {**record, "timing_ms": self.timing_ms, "model": self.model}


class Detector:
    """A spiking detector with energy accounting.

    Args:
        weights: a ``.safetensors`` file (default: the shipped weights or ``$SPIKEDET_WEIGHTS``), a model YAML,
            a SpikeYOLO ``.pt`` checkpoint (read without running code; refused when ``restricted`` is False),
            or any pickled ``.pt`` checkpoint when ``allow_pickle`` is True (unpickling runs code from the file).
        device: torch device string (``"cpu"``, ``"0"`` ...).
        counting: spike counting for energy (``"auto"``, ``"binary"``, ``"unary"``).
        constants: energy constants (45 nm defaults).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        allow_pickle: bool = False,
        restricted: bool = True,
        counting: energy.Counting = "auto",
        constants: energy.EnergyConstants | None = None,
        imgsz: int = 640,
    ):
        self.weights = resolve(weights, allow_pickle=allow_pickle, restricted=restricted)
        self.device = str(select_device(device))
        self.counting = counting
        self.constants = constants or energy.EnergyConstants()
        self.yolo = SpikeYOLO(self.weights)
        self.yolo.model = spiking(self.yolo.model, "integer")
        self.module = self.yolo.model
        self.stride = model_stride(self.module)
        self.imgsz = check_imgsz(imgsz, self.stride)
        self.names = dict(self.module.names)
        self._lock = threading.Lock()
        self._info = describe_model(self.module, self.weights)

    def info(self) -> dict:
        return dict(self._info)

    def detect(self, image: np.ndarray, conf: float = 0.25, iou: float = 0.7, imgsz: int | None = None) -> DetectionResult:
        """Detect objects in a BGR ``uint8`` image ``[H, W, 3]`` and estimate the energy of doing so."""
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3):
            raise SpikedetError("image must be an H x W x 3 array (BGR)")
        size = self.imgsz if imgsz is None else check_imgsz(imgsz, self.stride)
        start = time.perf_counter()
        with self._lock:
            with energy.measure(self.module, self.counting) as recorder:
                result = self.yolo.predict(image, conf=conf, iou=iou, imgsz=size, device=self.device, verbose=False)[0]
            report = recorder.next_report(self.constants)
        total = (time.perf_counter() - start) * 1e3
        speed = result.speed or {}
        timing = {k: round(float(speed.get(k, 0.0)), 2) for k in ("preprocess", "inference", "postprocess")}
        timing["total"] = round(total, 2)
        h, w = image.shape[:2]
        return DetectionResult(w, h, detections(result), report, timing, self.info())
