# spikedet's HTTP service on the CPU.
#   docker build -t spikedet .
#   docker run --rm -p 8000:8000 spikedet                      # http://127.0.0.1:8000/ (web page, /docs, /v1/detect)
#   docker run --rm -p 8000:8000 -v $PWD/best.safetensors:/models/best.safetensors:ro \
#       -e SPIKEDET_WEIGHTS=/models/best.safetensors -e SPIKEDET_API_KEY=secret spikedet
# CUDA: build with PyTorch's CUDA wheels and run with the NVIDIA container toolkit (the wheels carry the CUDA
# libraries; the host needs only the driver):
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 -t spikedet:cuda .
#   docker run --rm --gpus all -p 8000:8000 -e SPIKEDET_DEVICE=0 spikedet:cuda
# Every setting is a SPIKEDET_* variable (service/README.md). The model loads after start-up: the health check
# turns healthy once GET /readyz answers 200 (start period 120 s).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

# torch and torchvision as tested (Makefile's TORCH_SPEC), from the index of the wanted build (CPU by default)
ARG TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# a package mirror where PyPI or PyTorch's index is out of reach (unset by default; pip reads them as they are):
#   --build-arg PIP_EXTRA_INDEX_URL=http://mirror/simple --build-arg PIP_TRUSTED_HOST=mirror
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SPIKEDET_CONFIG_DIR=/tmp/spikedet \
    SPIKEDET_HOST=0.0.0.0 \
    SPIKEDET_PORT=8000

RUN pip install --index-url "${TORCH_INDEX}" ${TORCH_SPEC}

WORKDIR /src
COPY pyproject.toml README.md LICENSE* ./
COPY spikedet ./spikedet
COPY service ./service
COPY models ./models
COPY data ./data
COPY weights ./weights
# the export extra (onnx, onnxruntime) brings SPIKEDET_BACKEND=onnxruntime, the fast path
RUN pip install ".[export]" && rm -rf /src

RUN useradd --create-home --uid 10001 spikedet
USER 10001
WORKDIR /home/spikedet
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "spikedet.service.healthcheck"]

# one process per container: scale out with replicas (deploy/kubernetes.yaml); on a big host without an
# orchestrator add -e SPIKEDET_PROCESSES=N for N supervised processes
CMD ["spikedet", "serve"]
