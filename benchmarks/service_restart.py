"""How fast ``spikedet serve --processes 2`` comes back after every worker process is SIGKILLed.

Starts the server (tiny random-init ``spikeyolo-t`` in spike mode unless ``--weights``), waits until it is
ready, SIGKILLs both workers, and prints how long until ``/healthz`` and then ``/readyz`` answer 200 again
(uvicorn's supervisor checks its workers every half second and starts new ones; each loads its model).

Usage: ``python benchmarks/service_restart.py [--weights W]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tests/ holds the server helpers
from tests.service.common import SERVER_ENV
from tests.support.service import kill_workers, seconds_until_ok, server_process, tiny_weights, worker_pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    weights = Path(args.weights) if args.weights else tiny_weights(Path(tempfile.gettempdir()) / "spikedet-tiny.safetensors")
    with server_process(weights, env=SERVER_ENV, args=("--processes", "2")) as (url, process):
        old, killed = kill_workers(process)
        alive = seconds_until_ok(url + "/healthz", killed, 120)
        ready = seconds_until_ok(url + "/readyz", killed, 120)

        def after(seconds: float | None) -> str:
            return "not within 120 s" if seconds is None else f"after {seconds:.2f} s"

        print(f"killed {len(old)} workers: /healthz 200 {after(alive)}, /readyz 200 {after(ready)}; "
              f"{len(worker_pids(process) - old)} new workers")

if __name__ == "__main__":
    main()
