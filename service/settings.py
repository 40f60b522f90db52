"""Service settings: every limit of the HTTP service, read from ``SPIKEDET_*`` environment variables.

``Settings.from_env()`` reads them; ``Settings(...)`` (or ``settings.replace(...)``) builds them in code.
Each field's environment variable is ``SPIKEDET_`` + the field name in capitals (``max_upload_bytes`` is
``SPIKEDET_MAX_UPLOAD_BYTES``). ``service/README.md`` documents them all; :func:`describe` prints the same
table from the code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from spikedet.backends import BACKENDS
from spikedet.errors import SpikedetError
from spikedet.io.images import DEFAULT_STRIDE, IMGSZ_MAX, IMGSZ_MIN

ENV_PREFIX = "SPIKEDET_"
MIB = 1024 * 1024


class SettingsError(SpikedetError):
    """A setting (from the environment or from code) has a bad value."""


#: uvicorn's log levels
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _setting(default, help: str, minimum=None, maximum=None):
    return field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum})


@dataclass(frozen=True)
class Settings:
    # -- model -----------------------------------------------------------------------------------
    weights: str | None = _setting(
        None, "weights file (.safetensors; a model .yaml gives a random-init model); default: the shipped weights")
    allow_pickle: bool = _setting(
        False, "accept a pickled .pt checkpoint (unpickling runs code from the file: only for files you trust)")
    device: str = _setting("cpu", "torch device (cpu, 0, ...)")
    backend: str = _setting(
        "torch", "torch (PyTorch integer path, energy from hooks) or onnxruntime (the model exported to ONNX, its "
                 "spike trains returned by the graph and counted per image; an integer model is exported once and "
                 "fed the same rectangle as on PyTorch, a float model once per image size at the full square; "
                 "CPU; export extra)")
    workers: int = _setting(1, "model replicas, each run by its own inference thread", 1, 64)
    torch_threads: int = _setting(
        0, "torch intra-op threads per inference thread (0: (CPU cores - 1) / (workers x processes), at least 1)",
        0, 256)
    # -- request parameters ----------------------------------------------------------------------
    imgsz: int = _setting(640, f"default inference size (pixels, multiple of {DEFAULT_STRIDE})", IMGSZ_MIN, IMGSZ_MAX)
    imgsz_min: int = _setting(IMGSZ_MIN, "smallest imgsz a request may ask for", IMGSZ_MIN, IMGSZ_MAX)
    imgsz_max: int = _setting(1280, "largest imgsz a request may ask for", IMGSZ_MIN, IMGSZ_MAX)
    conf: float = _setting(0.25, "default confidence threshold", 0.0, 1.0)
    iou: float = _setting(0.7, "default NMS IoU threshold", 0.0, 1.0)
    # -- limits ----------------------------------------------------------------------------------
    max_upload_bytes: int = _setting(
        10 * MIB, "largest image upload in bytes, counted while the body streams in (413 past it)", 1, 2**40)
    multipart_overhead_bytes: int = _setting(
        64 * 1024, "bytes of multipart framing and other form fields allowed on top of max_upload_bytes", 0, 2**30)
    max_pixels: int = _setting(
        25_000_000, "largest image in pixels (width x height), read from the image header before decoding (413)",
        1, 2**40)
    max_pixels_in_flight: int = _setting(
        0, "pixels of decoded images held at once across all detect requests (read from their headers before "
           "decoding); a request that does not fit waits; 0: max_pixels (one largest image at a time)", 0, 2**40)
    max_concurrency: int = _setting(
        4, "requests to /v1/detect admitted at once (uploading, decoding, waiting or running); more get 503", 1, 4096)
    retry_after_s: int = _setting(1, "Retry-After seconds sent with 503 answers", 0, 3600)
    upload_timeout_s: float = _setting(30.0, "time allowed to receive one request body (408 past it)", 0.1, 3600)
    api_key: str | None = _setting(
        None, "when set, /v1/detect and /v1/model need this key in the api_key_header header (401)")
    api_key_header: str = _setting("X-API-Key", "header that carries the API key")
    # -- server (spikedet serve) -----------------------------------------------------------------
    host: str = _setting("127.0.0.1", "interface spikedet serve listens on")
    port: int = _setting(8000, "port spikedet serve listens on (0: any free port)", 0, 65535)
    processes: int = _setting(
        1, "server processes, each with its own model(s) and its own workers threads, under a supervisor that "
           "restarts one that dies", 1, 256)
    max_connections: int = _setting(
        256, "open connections per process; past it the one idle longest is closed, and only when all run "
             "requests does a new one get 503; 0: no cap", 0, 1_000_000)
    header_timeout_s: float = _setting(
        10.0, "time a connection has to send a complete request line and headers (408 and closed past it)",
        0.1, 3600)
    keepalive_s: float = _setting(5.0, "idle keep-alive connections are closed after this many seconds", 0.1, 3600)
    trusted_hosts: str | None = _setting(
        None, "comma-separated Host header values accepted (*.example.com allowed; 400 otherwise): a defence "
              "against DNS rebinding; unset: any host")
    log_level: str = _setting("info", "uvicorn log level (" + ", ".join(LOG_LEVELS) + ")")

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("minimum"), f.metadata.get("maximum")
            if value is None or isinstance(value, (bool, str)):
                continue
            if lo is not None and value < lo:
                raise SettingsError(f"{env_name(f.name)} must be >= {lo:g}, got {value}")
            if hi is not None and value > hi:
                raise SettingsError(f"{env_name(f.name)} must be <= {hi:g}, got {value}")
        for name in ("imgsz", "imgsz_min", "imgsz_max"):
            if getattr(self, name) % DEFAULT_STRIDE:
                raise SettingsError(
                    f"{env_name(name)} must be a multiple of {DEFAULT_STRIDE}, got {getattr(self, name)}")
        if not self.imgsz_min <= self.imgsz <= self.imgsz_max:
            raise SettingsError(
                f"need SPIKEDET_IMGSZ_MIN <= SPIKEDET_IMGSZ <= SPIKEDET_IMGSZ_MAX, got {self.imgsz_min}, "
                f"{self.imgsz}, {self.imgsz_max}")
        if self.backend not in BACKENDS:
            raise SettingsError(f"SPIKEDET_BACKEND must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"SPIKEDET_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.max_pixels_in_flight and self.max_pixels_in_flight < self.max_pixels:
            raise SettingsError(f"SPIKEDET_MAX_PIXELS_IN_FLIGHT ({self.max_pixels_in_flight}) must be at least "
                                f"SPIKEDET_MAX_PIXELS ({self.max_pixels})")
        if self.trusted_hosts is not None and not self.host_patterns:
            raise SettingsError("SPIKEDET_TRUSTED_HOSTS must name at least one host, e.g. api.example.com,localhost")
        if self.api_key is not None and not self.api_key.isascii():
            raise SettingsError("SPIKEDET_API_KEY must be ASCII (clients send it in an HTTP header)")
        if not self.api_key_header.strip() or any(c in self.api_key_header for c in " :\r\n"):
            raise SettingsError(f"SPIKEDET_API_KEY_HEADER must be a header name, got {self.api_key_header!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from ``SPIKEDET_*`` variables (``environ`` defaults to ``os.environ``); overrides win."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None and raw.strip() != "":  # an empty variable counts as unset
                values[f.name] = _parse(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """These settings as ``SPIKEDET_*`` variables (``from_env`` of them gives them back); unset ones left out."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[env_name(f.name)] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return env

    @property
    def host_patterns(self) -> tuple[str, ...]:
        """The ``trusted_hosts`` setting as lower-case names (empty: no check)."""
        if self.trusted_hosts is None:
            return ()
        return tuple(h.strip().lower() for h in self.trusted_hosts.split(",") if h.strip())

    @property
    def pixel_budget(self) -> int:
        """Pixels of decoded images in flight at once (``max_pixels_in_flight``, 0: ``max_pixels``)."""
        return self.max_pixels_in_flight or self.max_pixels

    @property
    def max_body_bytes(self) -> int:
        """The most bytes one request body may carry (image plus multipart framing)."""
        return self.max_upload_bytes + self.multipart_overhead_bytes

    def public(self) -> dict:
        """What clients may know (GET /v1/limits): limits and defaults, never the key."""
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_pixels": self.max_pixels,
            "max_pixels_in_flight": self.pixel_budget,
            "max_concurrency": self.max_concurrency,
            "formats": ["jpeg", "png", "webp", "bmp"],
            "imgsz": {"default": self.imgsz, "min": self.imgsz_min, "max": self.imgsz_max,
                      "multiple_of": DEFAULT_STRIDE},
            "conf": {"default": self.conf, "min": 0.0, "max": 1.0},
            "iou": {"default": self.iou, "min": 0.0, "max": 1.0},
            "api_key_required": self.api_key is not None,
            "api_key_header": self.api_key_header,
        }


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(f: dataclasses.Field, raw: str):
    name, text = env_name(f.name), raw.strip()
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be 1/0 (true/false), got {raw!r}")
    if kind == "int":
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if value != value:
            raise SettingsError(f"{name} must be a number, got {raw!r}")
        return value
    return text


def describe() -> list[tuple[str, str, str]]:
    """``(environment variable, default, help)`` for every setting."""
    return [(env_name(f.name), repr(f.default), f.metadata["help"]) for f in fields(Settings)]
