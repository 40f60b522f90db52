"""Would dynamic batching pay on this machine? Times the PyTorch path (Ultralytics' predictor on the integer
spiking model, with the energy hooks) on B images at once against B single-image calls, in one process.

Usage: ``python benchmarks/batching.py [--weights W] [--imgsz 320] [--batches 1,2,4,8] [--threads 1] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import cv2
    import torch

    from spikedet.detector import Detector
    from spikedet.measure import energy
    from spikedet.offline import import_ultralytics

    image = cv2.imread(str(Path(import_ultralytics().ASSETS) / "bus.jpg"))
    detector = Detector(args.weights, imgsz=args.imgsz)
    detector.detect(image)
    torch.set_num_threads(args.threads)  # after the first predict: Ultralytics resets it when its predictor starts

    def run(images) -> float:
        start = time.perf_counter()
        with energy.measure(detector.module) as recorder:
            results = detector.yolo.predict(images, imgsz=args.imgsz, device="cpu", verbose=False)
            reports = [recorder.next_report() for _ in results]
        assert len(reports) == len(images)
        return time.perf_counter() - start

    print(f"imgsz {args.imgsz}, {args.threads} torch thread(s), bus.jpg, median of {args.rounds} rounds")
    print("| batch | batched ms/image | one at a time ms/image | batched / one at a time |")
    print("|---:|---:|---:|---:|")
    for b in (int(x) for x in args.batches.split(",")):
        batched = statistics.median(run([image] * b) for _ in range(args.rounds)) / b
        single = statistics.median(sum(run([image]) for _ in range(b)) for _ in range(args.rounds)) / b
        print(f"| {b} | {batched * 1e3:.1f} | {single * 1e3:.1f} | {batched / single:.2f} |", flush=True)


if __name__ == "__main__":
    main()
