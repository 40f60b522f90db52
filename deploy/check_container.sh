#!/usr/bin/env bash
# Build the image and prove it serves: the container turns healthy through its own HEALTHCHECK (/readyz), a
# detection request on bus.jpg answers 200 with boxes and an energy report (torch and onnxruntime backends), and
# a container whose server is SIGKILLed is replaced by its restart policy. Needs a Docker engine (not run by CI:
# CI machines have none), and root (or sudo) for the crash step, which signals the server from the host.
#
#   deploy/check_container.sh [IMAGE_TAG]            # default spikedet:check
#   DOCKER_BUILD_ARGS="--build-arg PIP_EXTRA_INDEX_URL=... --build-arg PIP_TRUSTED_HOST=..." deploy/check_container.sh
#   SKIP_BUILD=1 deploy/check_container.sh spikedet:test   # an image built before
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${1:-spikedet:check}"
NAME="spikedet-check-$$"
PORT="${PORT:-18000}"
TIMEOUT_S="${TIMEOUT_S:-240}"

say() { printf '%s\n' "$*" >&2; }
cleanup() { docker rm -f "$NAME" "$NAME-ort" >/dev/null 2>&1 || true; }
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
    say "building $TAG"
    # shellcheck disable=SC2086  # the build args are words on purpose
    docker build ${DOCKER_BUILD_ARGS:-} -t "$TAG" . >&2
fi
say "image size: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.2f GB", $1 / 1e9}')"

wait_healthy() {  # NAME: until the image's own HEALTHCHECK (/readyz) says healthy
    local start health
    start=$(date +%s)
    while :; do
        health=$(docker inspect -f '{{.State.Health.Status}}' "$1")
        [ "$health" = healthy ] && break
        if [ $(( $(date +%s) - start )) -gt "$TIMEOUT_S" ]; then
            docker logs "$1" >&2 || true
            say "FAIL: $1 not healthy after ${TIMEOUT_S} s (health: $health)"
            exit 1
        fi
        sleep 1
    done
    say "$1 healthy after $(( $(date +%s) - start )) s (HEALTHCHECK: python -m spikedet.service.healthcheck -> /readyz)"
}

detect() {  # PORT: bus.jpg through /v1/detect answers boxes and an energy report
    python3 - "$1" <<'EOF'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
ready = json.load(urllib.request.urlopen(f"{base}/readyz", timeout=10))
print("readyz:", json.dumps(ready)[:200], file=sys.stderr)
sample = urllib.request.urlopen(f"{base}/v1/samples/bus.jpg", timeout=30).read()
request = urllib.request.Request(f"{base}/v1/detect", data=sample, headers={"content-type": "image/jpeg"})
answer = json.load(urllib.request.urlopen(request, timeout=120))
names = sorted(d["name"] for d in answer["detections"])
energy = answer["energy"]
print(f"detect ({answer['model'].get('backend')}): {len(names)} objects {names}; snn {energy['snn_mJ']:.3f} mJ, "
      f"ann {energy['ann_mJ']:.3f} mJ", file=sys.stderr)
assert names and energy["snn_mJ"] > 0 and energy["ann_mJ"] > 0, "no detections or no energy report"
EOF
}

# the image's own health check, at a short interval so the check does not wait the 15 s default
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" --restart on-failure \
    --health-interval 2s --health-start-period 180s "$TAG" >/dev/null
wait_healthy "$NAME"
detect "$PORT"

# the fast path (the image carries the export extra)
docker run -d --name "$NAME-ort" -p "127.0.0.1:$((PORT + 1)):8000" -e SPIKEDET_BACKEND=onnxruntime \
    --health-interval 2s --health-start-period 180s "$TAG" >/dev/null
wait_healthy "$NAME-ort"
detect "$((PORT + 1))"
docker rm -f "$NAME-ort" >/dev/null

# a crash of the server (SIGKILL to the container's main process from the host, as the kernel's OOM killer
# would: `docker kill` would count as a manual stop) ends the container; the restart policy brings it back
restarts=$(docker inspect -f '{{.RestartCount}}' "$NAME")
kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$NAME")"
start=$(date +%s)
while :; do
    if [ "$(docker inspect -f '{{.RestartCount}}' "$NAME")" -gt "$restarts" ] \
        && [ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ]; then
        break
    fi
    if [ $(( $(date +%s) - start )) -gt "$TIMEOUT_S" ]; then
        say "FAIL: not restarted and healthy within ${TIMEOUT_S} s"
        exit 1
    fi
    sleep 1
done
say "killed and restarted: healthy again after $(( $(date +%s) - start )) s"
say "OK: $TAG builds, turns healthy, detects with energy, and comes back after a crash"
