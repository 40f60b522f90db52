"""Memory of the HTTP service under parallel big uploads, with and without the pixel budget.

For each ``max_pixels_in_flight`` value, starts ``spikedet serve`` (tiny random-init ``spikeyolo-t`` in
spike mode unless ``--weights``: the image memory does not depend on the model), waits until it is ready,
posts ``--clients`` images of ``--megapixels`` Mpx at once (a smooth JPEG under the 10 MiB upload limit),
``--rounds`` times, and samples the server's RSS every 10 ms. Prints the RSS when ready, the peak, and the
rise. The server runs ``--workers`` model replicas so the replicas are not what serialises the requests.

Usage::

    python benchmarks/service_memory.py [--clients 4] [--megapixels 25] [--rounds 3] [--workers 4]
        [--budgets 100000000,50000000,0] [--weights W]

(0: the default, ``max_pixels``: one largest image at a time.)
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tests/ holds the server helpers
from tests.support.service import server_process, tiny_weights


def big_jpeg(megapixels: float) -> bytes:
    side = int((megapixels * 1e6) ** 0.5)
    y, x = np.mgrid[0:side, 0:side]
    pixels = np.stack([(x * 255 // side), (y * 255 // side), ((x + y) * 127 // side)], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def measure(weights: Path, data: bytes, clients: int, rounds: int, workers: int, budget: int,
            max_pixels: int) -> dict:
    env = {"SPIKEDET_MAX_PIXELS": str(max_pixels), "SPIKEDET_MAX_PIXELS_IN_FLIGHT": str(budget),
           "SPIKEDET_WORKERS": str(workers), "SPIKEDET_MAX_CONCURRENCY": str(clients), "SPIKEDET_IMGSZ": "320",
           "SPIKEDET_TORCH_THREADS": "1", "SPIKEDET_UPLOAD_TIMEOUT_S": "120"}
    with server_process(weights, env=env) as (url, process):
        server = psutil.Process(process.pid)
        time.sleep(1.0)
        ready = server.memory_info().rss
        peak, stop = [ready], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], server.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def post(_):
            return httpx.post(url + "/v1/detect", content=data, headers={"content-type": "image/jpeg"},
                              timeout=300).status_code

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            statuses = [s for _ in range(rounds) for s in pool.map(post, range(clients))]
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
    return {"budget": budget, "statuses": sorted(set(statuses)), "ready_mib": ready / 2**20,
            "peak_mib": peak[0] / 2**20, "rise_mib": (peak[0] - ready) / 2**20, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--megapixels", type=float, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--budgets", default="100000000,50000000,0")
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    data = big_jpeg(args.megapixels)
    max_pixels = int(args.megapixels * 1e6) + 1
    weights = Path(args.weights) if args.weights else tiny_weights(Path(tempfile.gettempdir()) / "spikedet-tiny.safetensors")
    print(f"{args.clients} clients x {args.rounds} rounds, one {args.megapixels:g} Mpx JPEG of {len(data) / 2**20:.1f} MiB "
          f"each, {args.workers} workers")
    print("| max_pixels_in_flight | statuses | RSS ready MiB | RSS peak MiB | rise MiB | seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for budget in (int(b) for b in args.budgets.split(",")):
        r = measure(weights, data, args.clients, args.rounds, args.workers, budget and max(budget, max_pixels),
                    max_pixels)
        print(f"| {r['budget'] or 'default (max_pixels)'} | {r['statuses']} | {r['ready_mib']:.0f} | {r['peak_mib']:.0f} | "
              f"{r['rise_mib']:.0f} | {r['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
