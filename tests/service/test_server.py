"""Sockets and uvicorn in a thread (service/server.py): bind() refuses a busy port or an unknown host in one
line; BackgroundServer serves an app, and its port stops listening once it is stopped."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest
from fastapi import FastAPI

from spikedet.errors import SpikedetError
from spikedet.service.server import BackgroundServer, bind


def hello_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict:
        return {"hello": "world"}

    return app


def test_bind_listens_on_a_free_port():
    sock = bind("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
        socket.create_connection((host, port), timeout=5).close()  # it accepts connections
    finally:
        sock.close()


def test_bind_refuses_a_busy_port_in_one_line():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(SpikedetError) as e:
            bind("127.0.0.1", port)
        message = str(e.value)
        assert message.startswith(f"cannot listen on 127.0.0.1:{port}: ") and "\n" not in message, message
    finally:
        busy.close()


def test_bind_refuses_an_unknown_host_in_one_line():
    with pytest.raises(SpikedetError) as e:
        bind("no-such-host.invalid", 0)
    message = str(e.value)
    assert message.startswith("cannot resolve host 'no-such-host.invalid'") and "\n" not in message, message


def test_background_server_serves_then_stops_listening():
    server = BackgroundServer(hello_app())
    with server as url:
        assert url == server.url == f"http://127.0.0.1:{server.port}"
        assert server.thread.is_alive()
        assert httpx.get(url + "/hello").json() == {"hello": "world"}
    assert not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/hello", timeout=2)


def test_background_server_start_and_stop_on_a_given_port():
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    server = BackgroundServer(hello_app(), port=port).start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/hello").status_code == 200
        with pytest.raises(SpikedetError, match=f"cannot listen on 127.0.0.1:{port}"):
            BackgroundServer(hello_app(), port=port)  # the port is taken: fails when built, not when started
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2)


def test_background_server_that_cannot_start_raises():
    @contextlib.asynccontextmanager
    async def broken(app):
        raise RuntimeError("start-up failed")
        yield

    server = BackgroundServer(FastAPI(lifespan=broken), log_level="critical")
    with pytest.raises(SpikedetError, match="did not start"):
        server.start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=2)
