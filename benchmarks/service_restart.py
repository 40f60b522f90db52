"""How fast ``spikedet serve --processes 2`` comes back after every worker process is SIGKILLed.

Starts the server (tiny random-init ``spikeyolo-t`` in spike mode unless ``--weights``), waits until it is
ready, SIGKILLs both workers, and prints how long until ``/healthz`` and then ``/readyz`` answer 200 again
(uvicorn's supervisor checks its workers every half second and starts new ones; each loads its model).

Usage: ``python benchmarks/service_restart.py [--weights W]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tests/ holds the server helpers
from tests.service.common import SERVER_ENV
from tests.support.service import server_process, tiny_weights
from tests.support.service import worker_pids as workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    weights = Path(args.weights) if args.weights else tiny_weights(Path(tempfile.gettempdir()) / "spikedet-tiny.safetensors")
    with server_process(weights, env=SERVER_ENV, args=("--processes", "2")) as (url, process):
        old = workers(process)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        killed, alive, ready = time.monotonic(), None, None
        while ready is None and time.monotonic() - killed < 120:
            with contextlib.suppress(httpx.HTTPError):
                if alive is None and httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    alive = time.monotonic() - killed
                if alive is not None and httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    ready = time.monotonic() - killed
            time.sleep(0.05)
        print(f"killed {len(old)} workers: /healthz 200 after {alive:.2f} s, /readyz 200 after {ready:.2f} s; "
              f"{len(workers(process) - old)} new workers")


if __name__ == "__main__":
    main()
