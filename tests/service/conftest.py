"""Fixtures of the service tests: `spikedet serve` in a subprocess (tiny converted model, the small limits of
``common.SERVER_ENV``) shared by all of them, and apps with a stand-in detector served in a thread."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spikedet.service.app import create_app
from spikedet.service.server import BackgroundServer
from spikedet.service.settings import Settings
from tests.service.common import SERVER_ENV
from tests.support.service import FakeDetector, server_process, tiny_weights


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.getbasetemp() / "spikedet-tiny.safetensors")


@pytest.fixture(scope="session")
def server(tiny, tmp_path_factory):
    """`spikedet serve` in a subprocess, one for all the service tests: yields (url, process)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with server_process(tiny, env=SERVER_ENV, log_path=log) as (url, process):
        yield url, process


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server[0], timeout=60) as c:
        yield c


@pytest.fixture
def fake_app():
    """Factory of thread-served apps with the stand-in detector: ``with fake_app(**settings) as url``."""

    def make(factory=None, **overrides):
        settings = Settings(**{"imgsz": 160, **overrides})
        return BackgroundServer(create_app(settings, factory or (lambda s: FakeDetector(s))))

    return make
