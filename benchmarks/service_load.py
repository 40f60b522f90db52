"""Load benchmark of the HTTP service against the raw model, measured in one run.

Starts ``spikedet serve`` in a subprocess, then for each concurrency level runs N client threads for M
seconds, each posting the same image to ``/v1/detect`` back to back. Reports throughput, p50/p95/p99 latency,
503s (the designed "busy" answer) and other errors, and the server's peak RSS; next to it, the raw model
latency (``Detector.detect`` in this process, same image, same imgsz), measured at concurrency 1 by one
client that alternates a raw call and a service request, so both see the same (possibly shared) machine. The
clients run on the same machine and take some of its CPU; after a 503 a client waits the Retry-After.

Usage::

    python benchmarks/service_load.py [--weights W.safetensors] [--imgsz 320] [--image bus.jpg]
        [--concurrency 1,4,16] [--duration 10] [--max-concurrency 4] [--workers 1] [--torch-threads 0]
        [--body multipart|raw] [--backend torch|onnxruntime] [--twin FLOAT.safetensors|none] [--json]

Without ``--weights`` it uses the default weights, or when none are installed the tiny random-init
``spikeyolo-t`` converted to spike mode (same pipeline, meaningless detections). Goal: service overhead
<= 15 % over the raw model at concurrency 1, and no errors other than designed 503s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tests/ holds the server helpers
from spikedet.service.state import default_torch_threads  # noqa: E402
from tests.support.service import server_process, tiny_weights  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class RawModel:
    """``Detector.detect`` on the decoded image in this process (detect + energy, no HTTP), the service's thread
    count applied."""

    def __init__(self, weights: Path, image_bytes: bytes, imgsz: int, torch_threads: int, backend: str = "torch"):
        import torch

        from spikedet.detector import Detector
        from spikedet.service.images import decode

        self.image, self.imgsz = decode(image_bytes, 10**9), imgsz
        torch.set_num_threads(torch_threads)  # the ONNX Runtime session takes its thread count from torch's
        self.detector = Detector(weights, imgsz=imgsz, backend=backend)
        for _ in range(3):
            self.detector.detect(self.image, imgsz=imgsz)
        torch.set_num_threads(torch_threads)  # after the warm-up: Ultralytics resets it when its predictor starts
        self.threads = torch.get_num_threads()
        self.label = f"Detector.detect, backend={backend} (detect + energy in process, no HTTP)"

    def once(self) -> float:
        t0 = time.perf_counter()
        self.detector.detect(self.image, imgsz=self.imgsz)
        return (time.perf_counter() - t0) * 1e3


class RawOnnx:
    """The model on ONNX Runtime without the service and without energy, on the image already letterboxed as
    the service letterboxes it (an integer model: the rectangle; a float model's fixed-size graph: the square):
    an integer model's plain graph (no codes returned) and its head decode to ``output0``; a float model's
    plain export (``output0`` only). What the ONNX Runtime backend is measured against. ``graph_ms`` keeps the
    ``session.run`` part alone."""

    def __init__(self, weights: Path, image_bytes: bytes, imgsz: int, threads: int, folder: str):
        import onnxruntime as ort

        from spikedet.convert.integer_onnx import export_integer_onnx
        from spikedet.convert.onnx import export_onnx
        from spikedet.detector import Detector
        from spikedet.io.integer_format import graph_document
        from spikedet.measure.integer_session import IntegerGraphSession
        from spikedet.nn.mode import is_integer
        from spikedet.service.images import decode

        detector = Detector(weights, imgsz=imgsz)
        self.decoder, integer = None, is_integer(detector.module)
        if integer:
            graph, tensors = graph_document(detector.module)
            path = export_integer_onnx(graph, {k: v.numpy() for k, v in tensors.items()}, Path(folder) / "plain.onnx")
            self.decoder = IntegerGraphSession(detector.module, folder)  # its decode only
            self.label = "raw ONNX Runtime model (integer graph + head decode to output0, in process)"
        else:
            path = export_onnx(detector.module, Path(folder) / "plain.onnx", imgsz=imgsz)
            self.label = "raw ONNX Runtime model (plain graph, session.run, in process)"
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.x = detector.onnx_input(decode(image_bytes, 10**9), imgsz)  # what the ONNX Runtime backend runs
        self.label += f", {self.x.shape[-2]}x{self.x.shape[-1]}"
        self.threads = threads
        self.graph_ms: list[float] = []
        for _ in range(3):
            self.once()
        self.graph_ms.clear()

    def once(self) -> float:
        t0 = time.perf_counter()
        outputs = self.session.run(None, {"images": self.x})
        self.graph_ms.append((time.perf_counter() - t0) * 1e3)
        if self.decoder is not None:
            self.decoder.decode(dict(zip(self.names, outputs)))
        return (time.perf_counter() - t0) * 1e3


class AnnTwin:
    """The float ANN twin in PyTorch (every neuron replaced by the activation it stands for), forward pass only
    on the same letterboxed image, same threads: the network the spiking model is compared with."""

    def __init__(self, weights: Path, shape: tuple[int, int], threads: int):
        import torch

        from benchmarks.inference import ann_twin
        from spikedet.io.weights import load_model

        model = load_model(weights).float().eval()
        model.reparameterize()
        self.model, self.torch = ann_twin(model), torch
        self.x = torch.zeros(1, 3, *shape)
        self.label = f"PyTorch float ANN twin ({weights.name}, forward only, {shape[0]}x{shape[1]})"
        torch.set_num_threads(threads)
        self.threads = threads
        for _ in range(3):
            self.once()

    def once(self) -> float:
        with self.torch.inference_mode():
            t0 = time.perf_counter()
            self.model(self.x)
            return (time.perf_counter() - t0) * 1e3


def post(client: httpx.Client, image_bytes: bytes, imgsz: int, body: str) -> httpx.Response:
    if body == "raw":
        return client.post("/v1/detect", params={"imgsz": imgsz}, content=image_bytes,
                           headers={"content-type": "image/jpeg"})
    return client.post("/v1/detect", params={"imgsz": imgsz}, files={"image": ("image.jpg", image_bytes, "image/jpeg")})


def summary(run: str, concurrency: int, latencies: list[float], elapsed: float, **extra) -> dict:
    return {"run": run, "concurrency": concurrency, "requests": len(latencies),
            "throughput": len(latencies) / elapsed if elapsed else 0.0, "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "mean": statistics.fmean(latencies) if latencies else float("nan"), "busy_503": 0, "errors": 0, **extra}


def paired(url: str, raws: list, image_bytes: bytes, imgsz: int, seconds: float, body: str) -> tuple[list[dict], dict]:
    """One client, alternating each raw model and one request to the service, so that all see the same
    machine (this one is shared): the raw rows and the service row at concurrency 1."""
    raw_ms: list[list[float]] = [[] for _ in raws]
    service_ms, errors = [], []
    service_time = 0.0
    with httpx.Client(base_url=url, timeout=120) as client:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or len(service_ms) + len(errors) < 5:
            for raw, samples in zip(raws, raw_ms):
                samples.append(raw.once())
            t0 = time.perf_counter()
            try:
                r = post(client, image_bytes, imgsz, body)
                ok = r.status_code == 200
                kind = r.status_code
            except httpx.HTTPError as e:
                ok, kind = False, type(e).__name__
            elapsed = time.perf_counter() - t0
            service_time += elapsed
            (service_ms if ok else errors).append(elapsed * 1e3 if ok else kind)
    raw_rows = [summary(raw.label, 1, samples, sum(samples) / 1e3,
                        peak_rss_mb=psutil.Process().memory_info().rss / 2**20, torch_threads=raw.threads)
                for raw, samples in zip(raws, raw_ms)]
    service_row = summary(f"service ({body}), alternating with the raw model", 1, service_ms, service_time,
                          errors=len(errors), error_kinds=sorted({str(e) for e in errors}), busy_without_retry_after=0)
    return raw_rows, service_row


class PeakRSS:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def reset(self) -> None:
        self.peak = self.process.memory_info().rss

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def load(url: str, image_bytes: bytes, imgsz: int, concurrency: int, seconds: float, body: str,
         backoff: float | None = None) -> dict:
    """N client threads posting back to back for `seconds`."""
    records: list[tuple[int | str, float, bool]] = []  # (status, latency ms, Retry-After present)
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)

    def client_loop(client: httpx.Client) -> None:
        barrier.wait()
        mine = []
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                r = post(client, image_bytes, imgsz, body)
                status: int | str = r.status_code
                retry = r.headers.get("retry-after") if r.status_code == 503 else None
                r.read()
            except httpx.HTTPError as e:
                status, retry = type(e).__name__, None
            mine.append((status, (time.perf_counter() - t0) * 1e3, retry is not None))
            if status == 503:  # back off as told (or by --backoff seconds), never past the end of the run
                wait = float(retry or 1) if backoff is None else backoff
                time.sleep(max(0.0, min(wait, deadline[0] - time.perf_counter())))
        with lock:
            records.extend(mine)

    with httpx.Client(base_url=url, timeout=120, limits=limits) as client:
        threads = [threading.Thread(target=client_loop, args=(client,)) for _ in range(concurrency)]
        for t in threads:
            t.start()
        deadline[0] = time.perf_counter() + seconds
        start = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    ok = [lat for status, lat, _ in records if status == 200]
    busy = [r for r in records if r[0] == 503]
    errors = [r for r in records if r[0] not in (200, 503)]
    row = summary(f"service ({body})", concurrency, ok, elapsed, busy_503=len(busy),
                  busy_without_retry_after=sum(1 for r in busy if not r[2]), errors=len(errors),
                  error_kinds=sorted({str(r[0]) for r in errors}))
    row["requests"] = len(records)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| run | clients | requests | ok/s | p50 ms | p95 ms | p99 ms | 503 | errors | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['concurrency']} | {r['requests']} | {r['throughput']:.2f} | {r['p50']:.1f} | "
                     f"{r['p95']:.1f} | {r['p99']:.1f} | {r['busy_503']} | {r['errors']} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="weights (.safetensors); default: the shipped weights, else tiny spikeyolo-t")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--image", help="image to post (default: Ultralytics' bus.jpg)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency level")
    parser.add_argument("--max-concurrency", type=int, default=4, help="server's SPIKEDET_MAX_CONCURRENCY")
    parser.add_argument("--workers", type=int, default=1, help="server's SPIKEDET_WORKERS")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch threads per worker (server and raw model); 0: the service's rule, "
                             "(cores - 1) / workers")
    parser.add_argument("--body", choices=("multipart", "raw"), default="multipart")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="server's SPIKEDET_BACKEND; onnxruntime: the raw row is the plain graph on ONNX Runtime")
    parser.add_argument("--backoff", type=float, default=None,
                        help="seconds a client waits after a 503 (default: the server's Retry-After)")
    parser.add_argument("--twin", default="",
                        help="float weights whose ANN twin is timed beside the raw model (default: the shipped "
                             "yolov5n-a2s.safetensors when the default weights are used; 'none' to skip)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)

    from spikedet.assets import default_weights
    from spikedet.offline import import_ultralytics

    note = ""
    weights = Path(args.weights) if args.weights else default_weights()
    if weights is None:
        weights = tiny_weights(Path(tempfile.gettempdir()) / "spikedet-bench-tiny.safetensors")
        note = " (no default weights installed: tiny random-init spikeyolo-t, converted)"
    image = Path(args.image) if args.image else Path(import_ultralytics().ASSETS) / "bus.jpg"
    image_bytes = image.read_bytes()
    levels = sorted({1, *(int(c) for c in args.concurrency.split(",") if c.strip())})  # 1: the comparison

    import torch

    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; "
          f"Python {platform.python_version()}, torch {torch.__version__}", file=sys.stderr)
    threads = args.torch_threads or default_torch_threads(args.workers)  # the service's rule
    print(f"weights: {weights}{note}; image {image.name} ({len(image_bytes):,} bytes); imgsz {args.imgsz}; "
          f"server max_concurrency {args.max_concurrency}, workers {args.workers}, torch threads per worker "
          f"{threads}", file=sys.stderr)

    exports = tempfile.TemporaryDirectory(prefix="spikedet-bench-") if args.backend == "onnxruntime" else None
    raw = (RawOnnx(weights, image_bytes, args.imgsz, threads, exports.name) if exports is not None
           else RawModel(weights, image_bytes, args.imgsz, threads))
    raws = [raw]
    if exports is not None:  # what the service does in process, to separate HTTP from the rest
        raws.append(RawModel(weights, image_bytes, args.imgsz, threads, backend="onnxruntime"))
    twin = args.twin or ("" if args.weights else "yolov5n-a2s.safetensors")
    if twin and twin != "none":
        from spikedet.io.images import letterbox_tensor, predictor_stride
        from spikedet.io.weights import resolve

        # the input the service's model sees: the raw model's, or the rectangle the PyTorch predictor makes
        shape = raw.x.shape[-2:] if exports is not None else \
            letterbox_tensor(raw.image, args.imgsz, predictor_stride(raw.detector.module)).shape[-2:]
        raws.append(AnnTwin(Path(resolve(twin, allow_pickle=False)), tuple(shape), threads))
    env = {"SPIKEDET_MAX_CONCURRENCY": str(args.max_concurrency), "SPIKEDET_WORKERS": str(args.workers),
           "SPIKEDET_BACKEND": args.backend,
           "SPIKEDET_TORCH_THREADS": str(args.torch_threads), "SPIKEDET_IMGSZ": str(args.imgsz),
           "SPIKEDET_LOG_LEVEL": "error"}
    rows = []
    with server_process(weights, env=env, args=("--log-level", "error")) as (url, process):
        sampler = PeakRSS(process.pid)
        try:
            load(url, image_bytes, args.imgsz, 1, min(2.0, args.duration), args.body)  # warm-up
            for c in levels:
                sampler.reset()
                if c == 1:
                    raw_rows, row = paired(url, raws, image_bytes, args.imgsz, args.duration, args.body)
                    rows[:0] = raw_rows
                else:
                    row = load(url, image_bytes, args.imgsz, c, args.duration, args.body, args.backoff)
                row["peak_rss_mb"] = sampler.peak / 2**20
                rows.append(row)
                print(f"{c} clients: {row['throughput']:.2f} ok/s, p50 {row['p50']:.1f} ms, 503 {row['busy_503']}, "
                      f"errors {row['errors']}", file=sys.stderr)
        finally:
            sampler.close()

    print(table(rows))
    one = next((r for r in rows if r["run"].startswith("service") and r["concurrency"] == 1), None)
    raw_row = rows[0]
    if one is not None:
        over_p50 = 100 * (one["p50"] / raw_row["p50"] - 1)
        over_mean = 100 * (one["mean"] / raw_row["mean"] - 1)
        verdict = "meets" if over_p50 <= 15 else "MISSES"
        print(f"\nservice overhead at 1 client: {over_p50:+.1f} % (p50), {over_mean:+.1f} % (mean) over the raw model: "
              f"{verdict} the <= 15 % goal")
        if getattr(raw, "graph_ms", None):
            graph = percentile(raw.graph_ms, 50)
            print(f"the service is {one['p50'] / graph:.2f}x the graph's session.run alone (p50 {graph:.1f} ms)")
        detect_row = next((r for r in rows if r["run"].startswith("Detector.detect, backend=onnxruntime")), None)
        if detect_row is not None:
            print(f"the service is {one['p50'] / detect_row['p50']:.2f}x Detector.detect in process (what HTTP and "
                  f"the server add; p50 {detect_row['p50']:.1f} ms)")
        twin_row = next((r for r in rows if r["run"].startswith("PyTorch float ANN twin")), None)
        if twin_row is not None:
            ratio = one["p50"] / twin_row["p50"]
            print(f"service (detect + energy over HTTP) / ANN twin forward: {ratio:.2f}x (p50): "
                  f"{'meets' if ratio < 1 else 'MISSES'} the below-the-twin goal")
    bad = [r for r in rows if r["errors"] or r.get("busy_without_retry_after")]
    print("errors other than designed 503s: " + ("none" if not bad else
          "; ".join(f"{r['concurrency']} clients: {r['errors']} {r['error_kinds']}" for r in bad)))
    if args.json:
        print(json.dumps(rows, indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
