"""The container and Kubernetes files (Dockerfile, deploy/kubernetes.yaml) agree with the service: the health
check and probes use /readyz and /healthz on the port the image serves, the pods have resource limits and
the Service selects them. (The health-check module itself: tests/service/test_healthcheck.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_serves_on_its_port_with_a_readyz_health_check():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*spikedet\.service\.healthcheck", text, flags=re.MULTILINE)
    assert "SPIKEDET_HOST=0.0.0.0" in text and "SPIKEDET_PORT=8000" in text and "EXPOSE 8000" in text
    assert re.search(r'^CMD \["spikedet", "serve"\]', text, flags=re.MULTILINE)
    assert re.search(r"^USER \d+", text, flags=re.MULTILINE)  # not root
    assert re.search(r'^RUN pip install "\.\[export\]"', text, flags=re.MULTILINE)  # SPIKEDET_BACKEND=onnxruntime works
    for folder in re.findall(r"^COPY (\S+) \./", text, flags=re.MULTILINE):
        assert (ROOT / folder).exists(), folder


def test_kubernetes_deployment_probes_limits_and_service():
    deployment, service = yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text())
    assert deployment["kind"] == "Deployment" and service["kind"] == "Service"
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SPIKEDET_HOST"] == "0.0.0.0"
    (port,) = container["ports"]
    assert port["containerPort"] == int(env["SPIKEDET_PORT"])
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_image_installs_the_torch_the_makefile_tests_with():
    docker = re.search(r'^ARG TORCH_SPEC="([^"]+)"', (ROOT / "Dockerfile").read_text(), re.M)
    make = re.search(r"^TORCH_SPEC \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert docker and make and docker.group(1) == make.group(1).strip()
