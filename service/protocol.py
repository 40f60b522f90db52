"""uvicorn's HTTP/1.1 protocol (h11) with what it lacks against hostile clients:

- **a header-read timeout**: a connection has ``header_timeout_s`` from being opened (or from the end of its
  previous response) to deliver a complete request line and headers, else it is closed (with a JSON 408 if
  it had sent part of a request). uvicorn 0.54 has none: its keep-alive timer starts only after a first
  response and stops at the first byte, so one byte a second held a connection for ever.
- **a connection cap that idle sockets cannot exhaust**: past ``max_connections`` open connections, the one
  that has waited longest for a request is closed to make room; only when every connection is running a
  request is the new one answered 503. uvicorn's ``limit_concurrency`` counts idle connections, so 256
  sockets that never sent a byte got every request, ``/healthz`` included, a 503.
- **JSON errors**: uvicorn's own answers to malformed requests (bad Content-Length, oversized headers or
  URL) are plain text; here they are ``{"error": "..."}`` like every other error of the service.

Its limits come from :class:`ServiceConfig` (a ``uvicorn.Config`` with two more fields), so the class can be
named in a config that uvicorn's process supervisor sends to its workers.
"""

from __future__ import annotations

import http
import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from spikedet.service.settings import Settings

#: defaults of the two limits: the service's settings ``header_timeout_s`` and ``max_connections``
HEADER_TIMEOUT_S: float = Settings.__dataclass_fields__["header_timeout_s"].default
MAX_CONNECTIONS: int = Settings.__dataclass_fields__["max_connections"].default


class ServiceConfig(uvicorn.Config):
    """``uvicorn.Config`` plus the limits :class:`ServiceProtocol` enforces."""

    def __init__(self, app, *, header_timeout_s: float = HEADER_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS,
                 **kwargs):
        kwargs.setdefault("http", ServiceProtocol)
        super().__init__(app, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections


def json_response(status: int, message: str, close: bool = True) -> bytes:
    """A complete HTTP/1.1 response with the body ``{"error": message}``, written straight to the socket
    (for answers given outside h11's request/response cycle)."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n")
    return head.encode("latin-1") + body


class _Connection(h11.Connection):
    """h11's connection that keeps the protocol error it raised (uvicorn catches it and drops the reason)."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self):
        try:
            return super().next_event()
        except h11.RemoteProtocolError as e:
            self.error = e
            raise


class ServiceProtocol(H11Protocol):
    """See the module docstring."""

    def __init__(self, config, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s = float(getattr(config, "header_timeout_s", HEADER_TIMEOUT_S))
        self.max_connections = int(getattr(config, "max_connections", MAX_CONNECTIONS))
        self.conn = _Connection(h11.SERVER, self.conn._max_incomplete_event_size)
        self.awaiting_headers = True  # no request in progress: waiting for the next request's headers
        self.waiting_since = 0.0
        self.bytes_waiting = 0  # bytes of a request whose headers are not complete yet
        self.header_timer = None
        self._served_cycle = None

    # -- connection life ----------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._wait_for_headers()
        if self.max_connections and len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.awaiting_headers:
            self.bytes_waiting += len(data)
        super().data_received(data)
        if self.awaiting_headers and self.cycle is not None and self.cycle is not self._served_cycle:
            self.awaiting_headers = False  # h11 parsed a request: its handler runs now
            self._stop_header_timer()

    def handle_websocket_upgrade(self, event) -> None:
        self.awaiting_headers = False  # the connection now belongs to the WebSocket protocol
        self._stop_header_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._served_cycle = self.cycle
        if not self.transport.is_closing():
            self._wait_for_headers()

    # -- the header-read timeout ----------------------------------------------------------------------
    def _wait_for_headers(self) -> None:
        self._stop_header_timer()
        self.awaiting_headers = True
        self.bytes_waiting = 0
        self.waiting_since = self.loop.time()
        self.header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _stop_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_timeout(self) -> None:
        self.header_timer = None
        if not self.awaiting_headers or self.transport.is_closing():
            return
        if self.bytes_waiting:  # a request was started: say why it is dropped
            self.transport.write(json_response(
                408, f"request headers not received within {self.header_timeout_s:g} s"))
        self.transport.close()

    # -- the connection cap ---------------------------------------------------------------------------
    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request; if none waits, refuse this one."""
        idle = [c for c in self.connections
                if c is not self and isinstance(c, ServiceProtocol) and c.awaiting_headers
                and not c.transport.is_closing()]
        if idle:
            oldest = min(idle, key=lambda c: c.waiting_since)
            oldest.transport.close()
            return
        self.logger.warning("refused a connection: %d connections are all running requests", self.max_connections)
        self.transport.write(json_response(
            503, f"busy: {self.max_connections} connections are open; retry shortly"))
        self.transport.close()

    # -- JSON instead of uvicorn's plain-text 400 ------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        error = self.conn.error
        status = getattr(error, "error_status_hint", 400) or 400
        if status == 431:
            reason = f"request line or headers over {self.conn._max_incomplete_event_size:,} bytes"
        else:
            reason = str(error) if error is not None and str(error) else "malformed request"
        self.transport.write(json_response(status, f"invalid HTTP request: {reason[:200]}"))
        self.transport.close()
