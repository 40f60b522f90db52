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

import importlib.util
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikedet.backends import BACKENDS, Backend
from spikedet.convert.bitplane import spiking
from spikedet.engine.device import select_device
from spikedet.engine.results import Detection, detections, image_record
from spikedet.engine.yolo import SpikeYOLO
from spikedet.errors import SpikedetError
from spikedet.io.images import check_imgsz, letterbox_tensor, model_stride, predictor_stride
from spikedet.io.weights import resolve
from spikedet.measure import energy
from spikedet.model.detection import describe_model
from spikedet.nn.mode import is_integer

__all__ = ["BACKENDS", "Detection", "DetectionResult", "Detector", "detections"]



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
        backend: ``torch`` (Ultralytics' predictor on the PyTorch integer path, energy from hooks) or
            ``onnxruntime`` (the integer path exported to ONNX, with every spike train as extra outputs: energy
            from the graph's own run; CPU; ``auto`` counting only). An integer model exports its graph of integer
            ops once, bit-exact with the PyTorch path and taking any size: images are letterboxed as on PyTorch
            (the smallest rectangle whose sides are multiples of the stride), so both backends give the same
            detections and the same energy report. A float model is exported once per ``imgsz`` at that fixed
            size: every image fills the square, so on a non-square image its figures differ from PyTorch's.
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
        backend: Backend = "torch",
    ):
        if backend not in BACKENDS:
            raise SpikedetError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.weights = resolve(weights, allow_pickle=allow_pickle, restricted=restricted)
        self.device = str(select_device(device))
        if backend == "onnxruntime" and (self.device != "cpu" or counting != "auto"):
            raise SpikedetError("backend=onnxruntime runs on the CPU with counting=auto")
        if backend == "onnxruntime":
            missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
            if missing:
                raise SpikedetError(f"backend=onnxruntime needs {' and '.join(missing)}: pip install 'spikedet[export]'")
        self.backend = backend
        self.counting = counting
        self.constants = constants or energy.EnergyConstants()
        self.yolo = SpikeYOLO(self.weights)
        self.yolo.model = spiking(self.yolo.model, "integer")
        self.module = self.yolo.model
        self.stride = model_stride(self.module)
        self.imgsz = check_imgsz(imgsz, self.stride)
        self.names = dict(self.module.names)
        self._lock = threading.Lock()
        self._info = {**describe_model(self.module, self.weights), "backend": backend}
        self._sessions: dict = {}  # image size -> GraphSession; None -> the IntegerGraphSession (any size)
        self._exports = tempfile.TemporaryDirectory(prefix="spikedet-onnx-") if backend == "onnxruntime" else None

    def info(self) -> dict:
        return dict(self._info)

    def detect(self, image: np.ndarray, conf: float = 0.25, iou: float = 0.7, imgsz: int | None = None) -> DetectionResult:
        """Detect objects in a BGR ``uint8`` image ``[H, W, 3]`` and estimate the energy of doing so."""
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3):
            raise SpikedetError("image must be an H x W x 3 array (BGR)")
        size = self.imgsz if imgsz is None else check_imgsz(imgsz, self.stride)
        start = time.perf_counter()
        with self._lock:
            if self.backend == "onnxruntime":
                result, report = self._detect_onnx(image, conf, iou, size)
            else:
                with energy.measure(self.module, self.counting) as recorder:
                    result = self.yolo.predict(image, conf=conf, iou=iou, imgsz=size, device=self.device,
                                               verbose=False)[0]
                report = recorder.next_report(self.constants)
        total = (time.perf_counter() - start) * 1e3
        speed = result.speed or {}
        timing = {k: round(float(speed.get(k, 0.0)), 2) for k in ("preprocess", "inference", "postprocess")}
        timing["total"] = round(total, 2)
        h, w = image.shape[:2]
        return DetectionResult(w, h, detections(result), report, timing, self.info())

    def onnx_input(self, image: np.ndarray, imgsz: int | None = None) -> np.ndarray:
        """The float32 batch ``[1, 3, H, W]`` the ONNX Runtime backend runs for a BGR ``image``: for an integer
        model (whose graph takes any size) the rectangle Ultralytics' predictor makes for PyTorch, for a float
        model (a fixed-size graph) the full square."""
        size = self.imgsz if imgsz is None else check_imgsz(imgsz, self.stride)
        stride = predictor_stride(self.module) if is_integer(self.module) else None
        return letterbox_tensor(image, size, stride)[None].numpy()

    def _detect_onnx(self, image: np.ndarray, conf: float, iou: float, size: int):
        """ONNX Runtime: the letterbox Ultralytics' predictor makes (an integer model's graph takes any size:
        the rectangle, as on PyTorch; a float model's is fixed: the full square), the graph (``output0`` and the
        spike counts), Ultralytics' NMS, boxes back to image pixels."""
        import torch
        from ultralytics.engine.results import Results
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import scale_boxes

        from spikedet.measure.graph_energy import GraphSession  # ONNX only here: the base install has none
        from spikedet.measure.integer_session import IntegerGraphSession

        integer = is_integer(self.module)
        key = None if integer else size  # one integer graph for every size; a float graph per size
        if key not in self._sessions:
            threads = torch.get_num_threads()
            self._sessions[key] = IntegerGraphSession(self.module, self._exports.name, threads) if integer else \
                GraphSession(self.module, size, self._exports.name, threads)
        session = self._sessions[key]
        t0 = time.perf_counter()
        x = self.onnx_input(image, size)
        t1 = time.perf_counter()
        output, report = session.run(x, self.constants)
        t2 = time.perf_counter()
        found = non_max_suppression(torch.from_numpy(output), conf, iou, max_det=300)[0]
        found[:, :4] = scale_boxes(x.shape[-2:], found[:, :4], image.shape[:2])
        result = Results(image, path="", names=self.names, boxes=found)
        result.speed = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                        "postprocess": (time.perf_counter() - t2) * 1e3}
        return result, report
