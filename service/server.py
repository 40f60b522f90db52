"""Listening sockets and uvicorn: :func:`bind` (used by ``spikedet serve``, which runs uvicorn in the
foreground) and :class:`BackgroundServer` (uvicorn serving an ASGI app in a thread of this process: the
webcam's live view, the tests).

    >>> from spikedet.service.app import create_app
    >>> with BackgroundServer(create_app()) as url:       # doctest: +SKIP
    ...     httpx.get(url + "/healthz")
"""

from __future__ import annotations

import socket
import threading
import time

from spikedet.errors import SpikedetError

#: How long :meth:`BackgroundServer.start` waits for uvicorn to serve.
START_TIMEOUT_S = 60.0
#: How long :meth:`BackgroundServer.stop` lets open connections finish before uvicorn drops them.
GRACEFUL_SHUTDOWN_S = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port); a bad host or a busy port is a one-line
    :class:`SpikedetError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise SpikedetError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise SpikedetError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


class BackgroundServer:
    """uvicorn serving ``app`` in a daemon thread of this process, on a socket from :func:`bind` (taken when
    the server is built, so a busy port fails at once and :attr:`url` is known before it starts).

    ``with BackgroundServer(app) as url:`` starts it and stops it; or :meth:`start` and :meth:`stop`. Once
    stopped, the port no longer listens.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import uvicorn

        self.host = host
        self.socket = bind(host, port)
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_keep_alive=5,
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name=f"uvicorn-{self.port}", daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except SystemExit:  # how uvicorn ends when the app's start-up fails: start() reports it
            pass

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> BackgroundServer:
        """Start serving; returns once uvicorn serves (:class:`SpikedetError` if it does not within 60 s)."""
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SpikedetError(f"the server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (open requests get up to 10 s to finish) and close the socket."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(GRACEFUL_SHUTDOWN_S + 20)
        self.socket.close()

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.stop()
