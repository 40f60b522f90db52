"""The container health check (service/healthcheck.py): exit 0 only once /readyz answers 200."""

from __future__ import annotations


def test_health_check_module_tells_ready_from_not_ready():
    import threading

    from spikedet.service.app import create_app
    from spikedet.service.healthcheck import main
    from spikedet.service.server import BackgroundServer
    from spikedet.service.settings import Settings
    from tests.support.service import FakeDetector

    gate = threading.Event()

    def slow(settings):
        gate.wait(30)
        return FakeDetector(settings)

    with BackgroundServer(create_app(Settings(imgsz=160), slow)) as url:
        assert main([url]) == 1  # loading: 503
        gate.set()
        for _ in range(200):
            if main([url]) == 0:
                break
            threading.Event().wait(0.05)
        assert main([url]) == 0
    assert main([url]) == 1  # stopped: no answer


def test_a_malformed_port_is_one_line_not_a_traceback(monkeypatch, capsys):
    from spikedet.service.healthcheck import main

    monkeypatch.setenv("SPIKEDET_PORT", "abc")
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unhealthy: bad URL") and len(err.strip().splitlines()) == 1
