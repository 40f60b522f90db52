#!/usr/bin/env bash
# Run benchmarks/gpu_check.py on a bare GPU machine: one with its own Python, torch, torchvision, numpy, OpenCV,
# matplotlib, PyYAML, requests, psutil, cloudpickle and safetensors, but no Ultralytics and no network.
#
#   bash benchmarks/gpu_check.sh download   here (with pip and a network): fetch the missing wheels into .whl/
#   bash benchmarks/gpu_check.sh [ARGS]     there: install .whl/*.whl offline into /tmp/site, run the check
#
# What travels must stay under 64 MiB with the checkout (about 13 MB): the wheels below are about 31 MB. polars is
# pinned to 0.20.31 (29 MB, one self-contained wheel) because polars >= 1.3x ships a 54 MB runtime wheel; Ultralytics
# (polars >= 0.20) only reads results.csv with it when it saves a checkpoint. albumentations is left out (Ultralytics
# trains without it); pycocotools is in (spikedet's final validation runs the COCO evaluation).
# PYTHON_VERSION and PLATFORMS must match the GPU machine's Python (3.12, x86-64 manylinux).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=${WHEELS:-.whl}
PYTHON=${PYTHON:-python3}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
PACKAGES=(
  ultralytics-opencv-headless==8.4.190  # the version spikedet pins (pyproject.toml)
  ultralytics-thop==2.2.3
  ultralytics-platform==0.1.99          # Ultralytics requires it on Python >= 3.11 (its only need, httpx, is there)
  polars==0.20.31
  pycocotools==2.0.11
)

if [ "${1:-}" = "download" ]; then
  mkdir -p "$WHEELS"
  "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "${PACKAGES[@]}"
  du -sh "$WHEELS"
  exit 0
fi

ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "no wheels in $WHEELS/: run 'bash benchmarks/gpu_check.sh download' first" >&2; exit 2; }
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export SPIKEDET_CONFIG_DIR="${SPIKEDET_CONFIG_DIR:-/tmp/spikedet-config}"
exec "$PYTHON" benchmarks/gpu_check.py "$@"
