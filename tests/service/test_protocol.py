"""The HTTP protocol of every service server (service/protocol.py), attacked on the loopback: idle and slow
sockets cannot starve the service, a connection that never completes its headers is closed, and the
server's own answers to malformed requests are JSON."""

from __future__ import annotations

import contextlib
import http
import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest


def connect(url: str, timeout: float = 10) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def send_and_read(url: str, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` (the server may close before it is all sent), then read until the server closes."""
    with connect(url, timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        answer = b""
        with contextlib.suppress(ConnectionResetError, socket.timeout):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def json_error(answer: bytes, status: int) -> str:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()), answer[:300]
    assert b"content-type: application/json" in head.lower(), head
    error = json.loads(body)["error"]
    assert error and "\n" not in error
    return error


def test_idle_connections_cannot_take_the_service_down(fake_app):
    """Three times max_connections sockets that never send a byte: /healthz and /readyz still answer 200."""
    with fake_app(max_connections=16, header_timeout_s=30) as url:
        idle = []
        try:
            for _ in range(48):
                idle.append(connect(url))
            time.sleep(0.2)
            with httpx.Client(timeout=5) as client:
                for _ in range(5):
                    assert client.get(url + "/healthz").status_code == 200
                    assert client.get(url + "/readyz").status_code == 200
            closed = 0
            for sock in idle:  # the oldest idle ones were closed to make room
                sock.settimeout(0.05)
                with contextlib.suppress(socket.timeout):
                    closed += sock.recv(1) == b""
            assert closed >= 48 - 16
        finally:
            for sock in idle:
                sock.close()


def test_headers_sent_one_byte_at_a_time_are_timed_out_with_408(fake_app):
    with fake_app(header_timeout_s=1.0) as url:
        start = time.monotonic()
        with connect(url) as sock:
            sock.settimeout(0.1)
            answer = b""
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:  # bounded: 200 bytes
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(bytes([byte]))
                with contextlib.suppress(socket.timeout, ConnectionResetError):
                    answer += sock.recv(4096)
                if answer or time.monotonic() - start > 10:
                    break
            with contextlib.suppress(socket.timeout, ConnectionResetError):
                while chunk := sock.recv(4096):
                    answer += chunk
        assert time.monotonic() - start < 5
        assert "not received within 1 s" in json_error(answer, 408)
        assert httpx.get(url + "/healthz").status_code == 200


def test_a_silent_connection_is_closed_after_the_header_timeout(fake_app):
    with fake_app(header_timeout_s=0.5) as url, connect(url) as sock:
        start = time.monotonic()
        assert sock.recv(100) == b""  # closed, nothing said: it never started a request
        assert 0.4 < time.monotonic() - start < 5


def test_keep_alive_connection_gets_a_fresh_header_timeout_for_each_request(fake_app):
    with fake_app(header_timeout_s=1.0, keepalive_s=30) as url, connect(url) as sock:
        for _ in range(3):
            time.sleep(0.6)  # under the timeout each time, over it in total
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):
                chunk = sock.recv(4096)
                assert chunk, answer  # closed
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("case, request_bytes, status", [
    ("bad Content-Length", b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    ("two Content-Lengths", b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     400),
    ("1 MB header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2**20 + b"\r\n\r\n", 431),
    ("1 MB URL", b"GET /" + b"a" * 2**20 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n", 400),
    ("no Host header", b"GET /healthz HTTP/1.1\r\n\r\n", 400),
])
def test_malformed_requests_get_json_errors(fake_app, case, request_bytes, status):
    with fake_app() as url:
        assert json_error(send_and_read(url, request_bytes), status).startswith("invalid HTTP request"), case
        assert httpx.get(url + "/healthz").status_code == 200


def test_connections_past_the_cap_all_busy_get_a_json_503(fake_app):
    from tests.service.common import SAMPLE, wait_status
    from tests.support.service import FakeDetector

    with fake_app(lambda s: FakeDetector(s, delay=1.5), max_connections=2, max_concurrency=4) as url:
        wait_status(url, "ready")
        busy = []
        try:
            for _ in range(2):  # two connections each running a detect request
                sock = connect(url)
                body = SAMPLE.read_bytes()
                sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                busy.append(sock)
            time.sleep(0.5)
            assert "connections are open" in json_error(send_and_read(url, b""), 503)
            for sock in busy:
                assert sock.recv(12) == b"HTTP/1.1 200"
        finally:
            for sock in busy:
                sock.close()
