"""One object for applications: load weights once, then detect objects and estimate energy per image.

    >>> from spikedet.detector import Detector
    >>> det = Detector("weights/yolov5n-a2s.safetensors")        # doctest: +SKIP
    >>> result = det.detect(cv2.imread("bus.jpg"))                # doctest: +SKIP
    >>> result.to_dict()["energy"]["efficiency"]                  # doctest: +SKIP

The model runs in spike mode on the integer path (the fast path; same spikes as the bit-plane simulation),
so every detection comes with the energy report of the spikes that produced it. The service and the webcam
demo use this class; it is safe to share between threads (calls are serialised).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spikedet import energy
from spikedet.errors import SpikedetError


@dataclass
class Detection:
    class_id: int
    name: str
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels

    def to_dict(self) -> dict:
        x1, y1, x2, y2 = self.box
        return {"class_id": self.class_id, "name": self.name, "confidence": self.confidence,
                "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}


@dataclass
class DetectionResult:
    width: int
    height: int
    detections: list[Detection]
    energy: energy.EnergyReport
    timing_ms: dict[str, float]
    model: dict = field(default_factory=dict)

    def to_dict(self, layers: bool = False) -> dict:
        return {
            "image": {"width": self.width, "height": self.height},
            "detections": [d.to_dict() for d in self.detections],
            "energy": self.energy.to_dict(layers=layers),
            "timing_ms": self.timing_ms,
            "model": self.model,
        }


class Detector:
    """A spiking detector with energy accounting.

    Args:
        weights: a ``.safetensors`` file (default: the shipped weights or ``$SPIKEDET_WEIGHTS``), a model YAML,
            or a pickled ``.pt`` checkpoint when ``allow_pickle`` is True (unpickling runs code from the file).
        device: torch device string (``"cpu"``, ``"0"`` ...).
        counting: spike counting for energy (``"auto"``, ``"binary"``, ``"unary"``).
        constants: energy constants (45 nm defaults).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        allow_pickle: bool = False,
        counting: energy.Counting = "auto",
        constants: energy.EnergyConstants | None = None,
        imgsz: int = 640,
    ):
        from spikedet.model import SpikeYOLO
        from spikedet.weights import load_module, resolve_for_inference
        from spikedet.workflow import ensure_spiking

        self.weights = resolve_for_inference(weights, allow_pickle)
        self.device = device
        self.counting = counting
        self.constants = constants or energy.EnergyConstants()
        self.imgsz = imgsz
        self.module = ensure_spiking(load_module(str(self.weights)), "integer")
        self.model = SpikeYOLO(self.module)
        self.names = dict(self.module.names)
        self._lock = threading.Lock()
        self._info = describe_model(self.module, self.weights)

    def info(self) -> dict:
        return dict(self._info)

    def detect(self, image: np.ndarray, conf: float = 0.25, iou: float = 0.7, imgsz: int | None = None) -> DetectionResult:
        """Detect objects in a BGR ``uint8`` image ``[H, W, 3]`` and estimate the energy of doing so."""
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3):
            raise SpikedetError("image must be an H x W x 3 array (BGR)")
        start = time.perf_counter()
        with self._lock:
            with energy.measure(self.module, self.counting) as recorder:
                result = self.model.predict(
                    image, conf=conf, iou=iou, imgsz=imgsz or self.imgsz, device=self.device, verbose=False
                )[0]
            report = recorder.next_report(self.constants)
        total = (time.perf_counter() - start) * 1e3
        boxes = result.boxes
        detections = [
            Detection(int(c), self.names.get(int(c), str(int(c))), round(float(p), 4), tuple(round(float(v), 1) for v in xyxy))
            for xyxy, p, c in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
        ]
        speed = result.speed or {}
        timing = {k: round(float(speed.get(k, 0.0)), 2) for k in ("preprocess", "inference", "postprocess")}
        timing["total"] = round(total, 2)
        h, w = image.shape[:2]
        return DetectionResult(w, h, detections, report, timing, self.info())


def describe_model(module, weights: Path | None = None) -> dict:
    """Architecture, scale, neurons, parameters and class names of a spikedet model."""
    from spikedet.neurons import SpikingNeuron

    neurons = [m for m in module.modules() if isinstance(m, SpikingNeuron)]
    yaml = getattr(module, "yaml", {}) or {}
    levels = sorted({n.L for n in neurons})
    ns = sorted({n.N for n in neurons})
    info = {
        "weights": None if weights is None else Path(weights).name,
        "architecture": Path(str(yaml.get("yaml_file", "model"))).stem.split("-")[0] or "model",
        "scale": yaml.get("scale"),
        "state": "converted" if getattr(module, "converted", False) else "trained",
        "neuron": {
            "types": sorted({type(n).__name__ for n in neurons}),
            "layers": len(neurons),
            "T": max((n.T for n in neurons), default=1),
            "L": levels[0] if len(levels) == 1 else [levels[0], levels[-1]] if levels else None,
            "N": ns[0] if len(ns) == 1 else [ns[0], ns[-1]] if ns else None,
            "D": neurons[0].D if len(levels) == 1 and len(ns) == 1 and neurons else None,
            "B": max((n.code.planes for n in neurons), default=None),  # spike planes per timestep
            "zero_offset": any(n.code.zero for n in neurons),
        },
        "parameters": int(sum(p.numel() for p in module.parameters())),
        "classes": len(module.names),
        "names": {int(k): v for k, v in dict(getattr(module, "names", {}) or {}).items()},
        "stride": [int(s) for s in getattr(module, "stride", torch.tensor([32])).tolist()],
    }
    return info
