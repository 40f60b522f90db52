"""What the running service holds: the loaded model(s), the load status and the admission count.

The model is loaded in a background thread started at start-up, so ``/healthz`` answers at once and
``/readyz`` answers 503 until the model is loaded and warmed up. ``workers`` replicas of the model are
loaded; each inference takes one replica for its duration, in a worker thread (never on the event loop).
Admission is a plain counter on the event loop: at most ``max_concurrency`` detect requests are inside
the service at once (uploading, decoding, waiting for a replica, running); the rest are answered 503 at
once, so nothing queues without bound. An admitted request decodes its image in a worker thread, then waits
(first come, first served) for a free replica and runs it in a worker thread: one request decodes while
another runs the model.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable

import anyio
import numpy as np

from spikedet.errors import SpikedetError, first_line
from spikedet.service.errors import ApiError
from spikedet.service.settings import Settings

log = logging.getLogger("spikedet.service")

DetectorFactory = Callable[[Settings], object]
#: Called with the one-line error when the model fails to load (``spikedet serve`` ends the process there).
LoadFailure = Callable[[str], None]
# an absolute path (POSIX or Windows) inside an error message: clients see the file's name only
_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/](?:[^\s'\"\\/]+[\\/])+([^\s'\"\\/]+)")


def default_factory(settings: Settings):
    """A :class:`spikedet.detector.Detector` from the settings' weights."""
    from spikedet.detector import Detector

    return Detector(settings.weights, device=settings.device, allow_pickle=settings.allow_pickle,
                    restricted=settings.allow_pickle, imgsz=settings.imgsz, backend=settings.backend)


def default_torch_threads(workers: int, processes: int = 1) -> int:
    """(CPU cores - 1) / (workers x processes), at least 1: OpenMP threads that outnumber free cores spin
    and stall."""
    return max(1, ((os.cpu_count() or 1) - 1) // max(1, workers * processes))


class PixelBudget:
    """Pixels of decoded images in flight, at most ``total``: a request takes its image's pixel count (read
    from the header) before decoding and gives it back when its detection is done; one that does not fit
    waits, first come first served. It bounds the decoded images' memory across concurrent requests (a
    25-megapixel image is 75 MB as BGR, and decoding holds two or three copies at once). Event loop only."""

    def __init__(self, total: int):
        self.total = total
        self.used = 0
        self._waiting: deque[tuple[int, anyio.Event]] = deque()

    async def acquire(self, pixels: int) -> None:
        if not self._waiting and self.used + pixels <= self.total:
            self.used += pixels
            return
        entry = (pixels, anyio.Event())
        self._waiting.append(entry)
        try:
            await entry[1].wait()
        except BaseException:  # cancelled (client gone, timeout): leave the line, or give back what was granted
            if entry in self._waiting:
                self._waiting.remove(entry)
                self._grant()
            else:
                self.release(pixels)
            raise

    def release(self, pixels: int) -> None:
        self.used -= pixels
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.total:
            pixels, event = self._waiting.popleft()
            self.used += pixels
            event.set()


class ServiceState:
    def __init__(self, settings: Settings, factory: DetectorFactory | None = None,
                 on_load_failure: LoadFailure | None = None):
        self.settings = settings
        self.factory = factory or default_factory
        self.on_load_failure = on_load_failure
        self.status = "loading"  # -> "ready" | "failed"
        self.error: str | None = None  # what clients are told (no server-side paths); the log has it all
        self.info: dict | None = None
        self.load_seconds: float | None = None
        self.in_flight = 0
        self.served = 0
        self.rejected_busy = 0
        self._replicas: queue.SimpleQueue = queue.SimpleQueue()
        self._thread_setup = threading.local()
        self.decode_limiter: anyio.CapacityLimiter | None = None
        self.infer_limiter: anyio.CapacityLimiter | None = None
        self.pixel_budget = PixelBudget(settings.pixel_budget)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Called on the event loop at start-up: make the limiters, start loading in the background."""
        self.decode_limiter = anyio.CapacityLimiter(self.settings.max_concurrency)
        # one token per replica, taken on the event loop: anyio serves waiters first come, first served
        # (threads blocking on a queue of replicas are not: one request once waited 15 s behind newer ones)
        self.infer_limiter = anyio.CapacityLimiter(self.settings.workers)
        threading.Thread(target=self._load, name="spikedet-load", daemon=True).start()

    def _load(self) -> None:
        start = time.perf_counter()
        try:
            self._setup_thread()
            size = self.settings.imgsz
            for _ in range(self.settings.workers):
                detector = self.factory(self.settings)
                detector.detect(np.zeros((size, size, 3), np.uint8), imgsz=size)  # warm-up: first run is slow
                self._replicas.put(detector)
                if self.info is None:
                    self.info = detector.info()
        except BaseException as e:  # reported by /readyz, or fatal through on_load_failure
            message = f"model failed to load: {first_line(e)}"
            self.error = without_paths(message)
            self.status = "failed"
            if self.on_load_failure is not None:
                self.on_load_failure(message)
            log.error("%s", message, exc_info=not isinstance(e, (ValueError, SpikedetError)))
            return
        self.load_seconds = round(time.perf_counter() - start, 3)
        self.status = "ready"
        log.info("model ready in %.1f s (%d replica(s))", self.load_seconds, self.settings.workers)

    @property
    def torch_threads(self) -> int:
        """Intra-op threads per inference thread: the setting, or (0) the CPU cores but one (left to the event
        loop, uploads and decoding) shared among the workers, at least 1."""
        return self.settings.torch_threads or default_torch_threads(self.settings.workers, self.settings.processes)

    def _setup_thread(self) -> None:
        """Apply the torch thread count in the calling thread, once. With OpenMP the count is per thread, and
        Ultralytics changes it (to cores - 1) when its predictor starts, so each inference thread sets it."""
        if getattr(self._thread_setup, "done", False):
            return
        import torch

        torch.set_num_threads(self.torch_threads)
        self._thread_setup.done = True

    # -- requests --------------------------------------------------------------------------------
    def require_ready(self) -> None:
        if self.status == "ready":
            return
        if self.status == "failed":
            raise ApiError(503, self.error or "model failed to load")
        raise ApiError(503, "model is loading", {"Retry-After": str(self.settings.retry_after_s)})

    def admit(self) -> None:
        """Take a detect slot or answer 503 with Retry-After (the caller must :meth:`release` it)."""
        if self.in_flight >= self.settings.max_concurrency:
            self.rejected_busy += 1
            raise ApiError(
                503, f"busy: {self.settings.max_concurrency} requests are already being served; retry shortly",
                {"Retry-After": str(self.settings.retry_after_s)},
            )
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    def pixels(self, data: bytes) -> int:
        """The upload's width x height from its header (nothing decoded); a bad image raises its 4xx."""
        from spikedet.service.images import open_checked

        _, img = open_checked(data, self.settings.max_pixels)
        with img:
            width, height = img.size
        return width * height

    def decode(self, data: bytes) -> tuple[np.ndarray, float]:
        """Run in a worker thread: the upload as a BGR image, and the milliseconds it took."""
        from spikedet.service.images import decode

        start = time.perf_counter()
        image = decode(data, self.settings.max_pixels)
        return image, (time.perf_counter() - start) * 1e3

    def detect(self, image: np.ndarray, conf: float, iou: float, imgsz: int, layers: bool) -> tuple[dict, float]:
        """Run in a worker thread holding an ``infer_limiter`` token (so a replica is free): detect, give the
        replica back; the JSON-ready result and the milliseconds it took."""
        self._setup_thread()
        start = time.perf_counter()
        detector = self._replicas.get_nowait()
        try:
            result = detector.detect(image, conf=conf, iou=iou, imgsz=imgsz)
        finally:
            self._replicas.put(detector)
        payload = finite(result.to_dict(layers=layers))
        return payload, (time.perf_counter() - start) * 1e3


def service_state(request) -> ServiceState:
    """The :class:`ServiceState` of the app serving ``request`` (``create_app`` puts it there)."""
    return request.app.state.service


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its file name: an error shown to clients names no server path."""
    return _PATH.sub(lambda m: m.group(1), text)


def finite(value):
    """JSON has no inf or NaN: such floats become None (the rest is unchanged)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
