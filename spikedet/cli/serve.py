"""Commands that run an application: ``serve`` (the HTTP service) and ``webcam`` (the live demo).

Both check the weights and the device before loading anything (``serve`` also binds its port first), so bad
input is one line and exit 2, never a half-started server.
"""

from __future__ import annotations

import sys

from spikedet.cli import options
from spikedet.cli.parser import Invocation, Setting, command, emit_json
from spikedet.service.settings import BACKENDS, LOG_LEVELS, Settings


def _env_default(name: str, default=None) -> str:
    """Help text naming a serve setting's environment variable and its default (read from the Settings)."""
    if default is None:
        default = Settings.__dataclass_fields__[name].default
    return f"(default: $SPIKEDET_{name.upper()} or {default})"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@command(
    "serve",
    "run the HTTP detection service (web page at /, API at /v1/detect, docs at /docs)",
    settings={
        "weights": Setting("str", None, "weights .safetensors " + _env_default("weights", "the shipped weights")),
        "host": Setting("str", None, "interface to listen on " + _env_default("host")),
        "port": Setting("int", None, "port (0: any free port) " + _env_default("port"), minimum=0, maximum=65535),
        "allow_pickle": Setting("bool", False, "accept a pickled .pt checkpoint (runs code from the file) "
                                               "(default: $SPIKEDET_ALLOW_PICKLE)"),
        "device": Setting("str", None, "torch device " + _env_default("device")),
        "backend": Setting("choice", None, "run the model on torch or onnxruntime " + _env_default("backend"),
                           choices=BACKENDS),
        "processes": Setting("int", None, "server processes under a supervisor that restarts a dead one "
                             + _env_default("processes"), minimum=1),
        "workers": Setting("int", None, "model replicas run in parallel by threads of each process "
                           + _env_default("workers"), minimum=1),
        "torch_threads": Setting("int", None, "torch threads per replica, 0 = (cores - 1) / (workers x processes) "
                                 + _env_default("torch_threads"), minimum=0),
        "max_concurrency": Setting("int", None, "detect requests admitted at once, more get 503 "
                                   + _env_default("max_concurrency"), minimum=1),
        "imgsz": options.imgsz(None, "default inference size " + _env_default("imgsz"), square=True),
        "log_level": Setting("choice", None, "uvicorn log level " + _env_default("log_level"),
                             choices=LOG_LEVELS),
    },
    json_output=False,
    examples=(
        "spikedet serve --weights best-bitplane.safetensors",
        "spikedet serve --host 0.0.0.0 --port 8080 workers=2 torch_threads=4",
        "spikedet serve --host 0.0.0.0 --processes 2 torch_threads=1",
        "SPIKEDET_API_KEY=secret SPIKEDET_MAX_UPLOAD_BYTES=5000000 spikedet serve",
    ),
)
def cmd_serve(inv: Invocation) -> int:
    from spikedet.engine.device import select_device
    from spikedet.io.weights import check_weights
    from spikedet.service.server import bind, serve

    s = dict(inv.settings)
    allow_pickle = s.pop("allow_pickle") or None  # the flag can only turn it on; the environment may too
    settings = Settings.from_env(allow_pickle=allow_pickle, **s)
    check_weights(settings.weights, allow_pickle=settings.allow_pickle, restricted=settings.allow_pickle)
    select_device(settings.device)  # a device that does not exist: one line, before anything starts
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    _log(f"spikedet serve: http://{shown}:{port}/  (API docs http://{shown}:{port}/docs; the model loads in the "
         "background, GET /readyz says when it is ready)")
    return serve(settings, sock)  # 2 (said in one line) if the model fails to load


@command(
    "webcam",
    "live detection on a camera, video file or stream: boxes, FPS and energy per frame, in the browser or a video",
    main="SOURCE",
    main_setting="source",
    settings={
        "source": Setting("str", "0", "camera index, video file or stream URL"),
        "output": Setting("str", None, "write the annotated video here (.mp4, .avi)"),
        "port": Setting("int", None, "serve the live view on this loopback port (default 8001 when no output "
                                     "is given; 0: any free port)", minimum=0, maximum=65535),
        "host": Setting("str", "127.0.0.1", "interface of the live view"),
        "weights": options.weights(),
        "allow_pickle": Setting("bool", False, "accept a pickled .pt checkpoint (runs code from the file)"),
        "frames": Setting("int", None, "stop after this many frames (max_frames; default: until the source ends "
                                       "or Ctrl+C)", minimum=1),
        "loop": Setting("bool", False, "replay a video file from the start when it ends"),
        "imgsz": options.imgsz(640, square=True),
        "conf": Setting("float", 0.25, "confidence threshold", minimum=0, maximum=1),
        "iou": Setting("float", 0.7, "NMS IoU threshold", minimum=0, maximum=1),
        "device": Setting("str", "cpu", "torch device (cpu, 0, ...)"),
    },
    examples=(
        "spikedet webcam --source 0 --port 8001",
        "spikedet webcam --source clip.mp4 --output out.mp4 --frames 300",
        "spikedet webcam rtsp://camera.local/stream --weights best-bitplane.safetensors",
    ),
)
def cmd_webcam(inv: Invocation) -> int:
    from spikedet import webcam
    from spikedet.detector import Detector
    from spikedet.engine.device import select_device
    from spikedet.io.weights import check_weights

    s = inv.settings
    port = s["port"]
    if port is None and s["output"] is None:
        port = 8001
    check_weights(s["weights"], allow_pickle=s["allow_pickle"])
    select_device(s["device"])
    webcam.parse_source(s["source"])  # a missing file fails before the model loads
    if s["output"] is not None:
        webcam.check_output(s["output"])
    detector = Detector(s["weights"], device=s["device"], allow_pickle=s["allow_pickle"], imgsz=s["imgsz"])

    def started(stats):
        where = [f"live view {stats.url}"] if stats.url else []
        where += [f"writing {s['output']}"] if s["output"] else []
        _log(f"spikedet webcam: {s['source']} -> {', '.join(where)} (Ctrl+C stops)")

    stats = webcam.run(
        detector, s["source"], output=s["output"], port=port, host=s["host"], max_frames=s["frames"],
        conf=s["conf"], iou=s["iou"], imgsz=s["imgsz"], loop=s["loop"], on_start=started, log=_log,
    )
    summary = stats.as_dict()
    if inv.json:
        emit_json(summary)
    else:
        energy = f", {stats.mean_snn_mJ:.2f} mJ/frame SNN vs {stats.mean_ann_mJ:.2f} mJ ANN" if stats.frames else ""
        print(f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} FPS){energy}"
              + (f"; wrote {stats.output}" if stats.output else ""))
    return 0
