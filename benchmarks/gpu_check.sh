#!/usr/bin/env bash
# Run benchmarks/gpu_check.py on a bare GPU machine: one with its own Python, torch, torchvision, numpy, OpenCV,
# matplotlib, PyYAML, requests, psutil, cloudpickle and safetensors, but no Ultralytics, no network and no ../shared.
#
#   bash benchmarks/gpu_check.sh download   here (pip with a network): fill .gpu_carry/ (ignored by git)
#   bash benchmarks/gpu_check.sh [ARGS]     there: install .gpu_carry/wheels offline into /tmp/site, run the check
#
# .gpu_carry/ holds (about 42 MB; with the ~13 MB checkout it stays under the device tool's 64 MiB):
# - wheels/: Ultralytics and what it needs beyond that machine's packages (31 MB). polars is pinned to 0.20.31
#   (29 MB, one self-contained wheel) because newer releases ship a 54 MB runtime wheel; Ultralytics (polars >=
#   0.20) reads results.csv with it whenever it saves a checkpoint. albumentations is left out (Ultralytics trains
#   without it); pycocotools is in (spikedet's final validation runs the COCO evaluation).
# - coco128/: the first 64 images of ../shared/data/coco128's train2017 with their labels (11 MB), for the
#   3-epoch training run (all 128 would pass the 64 MiB).
# PYTHON_VERSION and the platforms must match the GPU machine's Python (3.12, x86-64 manylinux).
set -euo pipefail
cd "$(dirname "$0")/.."

CARRY=${CARRY:-.gpu_carry}
PYTHON=${PYTHON:-python3}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
COCO128=${COCO128:-../shared/data/coco128}
PACKAGES=(
  ultralytics-opencv-headless==8.4.190  # the version spikedet pins (pyproject.toml)
  ultralytics-thop==2.2.3
  ultralytics-platform==0.1.99          # Ultralytics requires it on Python >= 3.11 (its only need, httpx, is there)
  polars==0.20.31
  pycocotools==2.0.11
)

if [ "${1:-}" = "download" ]; then
  mkdir -p "$CARRY/wheels"
  "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$CARRY/wheels" "${PACKAGES[@]}"
  if [ -d "$COCO128/images/train2017" ]; then
    rm -rf "$CARRY/coco128"
    mkdir -p "$CARRY/coco128/images/train2017" "$CARRY/coco128/labels/train2017"
    for image in $(ls "$COCO128/images/train2017" | sort | head -n 64); do
      cp "$COCO128/images/train2017/$image" "$CARRY/coco128/images/train2017/"
      label="$COCO128/labels/train2017/${image%.*}.txt"
      if [ -f "$label" ]; then cp "$label" "$CARRY/coco128/labels/train2017/"; fi
    done
  else
    echo "no $COCO128/images/train2017: the GPU check will train on coco8" >&2
  fi
  du -sh "$CARRY"
  exit 0
fi

ls "$CARRY"/wheels/*.whl >/dev/null 2>&1 || {
  echo "no wheels in $CARRY/wheels/: run 'bash benchmarks/gpu_check.sh download' first" >&2
  exit 2
}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export SPIKEDET_CONFIG_DIR="${SPIKEDET_CONFIG_DIR:-/tmp/spikedet-config}"
exec "$PYTHON" benchmarks/gpu_check.py "$@"
