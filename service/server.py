"""Listening sockets and uvicorn: :func:`bind` and :func:`serve` (``spikedet serve``: uvicorn in the
foreground, in this process or in ``processes`` worker processes under uvicorn's supervisor, which replaces
a worker that dies) and :class:`BackgroundServer` (uvicorn serving an ASGI app in a thread of this process:
the webcam's live view, the tests). Every server runs :class:`~spikedet.service.protocol.ServiceProtocol`
(header-read timeout, connection cap, JSON errors) with the limits of :func:`server_config`.

    >>> from spikedet.service.app import create_app
    >>> with BackgroundServer(create_app()) as url:       # doctest: +SKIP
    ...     httpx.get(url + "/healthz")
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from spikedet.errors import SpikedetError
from spikedet.service.protocol import ServiceConfig
from spikedet.service.settings import Settings

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


def server_config(app, settings: Settings, **kwargs) -> ServiceConfig:
    """The uvicorn config of a service server: the settings' connection limits and log level.
    ``limit_concurrency`` stays off: it counted idle connections and answered plain text."""
    return ServiceConfig(app, header_timeout_s=settings.header_timeout_s, max_connections=settings.max_connections,
                         timeout_keep_alive=settings.keepalive_s, log_level=settings.log_level, lifespan="on",
                         timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, **kwargs)


def exit_process(code: int):
    """What a served process does when its model fails to load: one line on stderr, then exit ``code``
    (an ``os._exit``: the model never loaded, so no detect request is cut short)."""

    def fail(message: str) -> None:
        print(f"spikedet serve: error: {message}", file=sys.stderr, flush=True)
        os._exit(code)

    return fail


def worker_app():
    """The app of one worker process (``processes > 1``): its settings come from the ``SPIKEDET_*``
    environment that :func:`serve` exported; a model that fails to load stops the whole supervisor."""
    from uvicorn.config import STARTUP_FAILURE

    from spikedet.service.app import create_app

    return create_app(Settings.from_env(), on_load_failure=exit_process(STARTUP_FAILURE))


def serve(settings: Settings, sock: socket.socket) -> int:
    """Serve the service on ``sock`` until stopped (Ctrl+C, SIGTERM); the exit code: 2 if the model failed
    to load (said in one line), else 0. ``processes > 1``: that many worker processes share the socket, and
    uvicorn's supervisor starts a new one when one dies (it checks every half second)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from spikedet.service.app import create_app

    if settings.processes == 1:
        app = create_app(settings, on_load_failure=exit_process(2))
        uvicorn.Server(server_config(app, settings)).run(sockets=[sock])
        return 0
    os.environ.update(settings.to_env())  # the workers are new interpreters: they read the environment
    config = server_config("spikedet.service.server:worker_app", settings, factory=True,
                           workers=settings.processes)
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    return 2 if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


class BackgroundServer:
    """uvicorn serving ``app`` in a daemon thread of this process, on a socket from :func:`bind` (taken when
    the server is built, so a busy port fails at once and :attr:`url` is known before it starts).

    ``with BackgroundServer(app) as url:`` starts it and stops it; or :meth:`start` and :meth:`stop`. Once
    stopped, the port no longer listens.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 settings: Settings | None = None):
        import uvicorn

        self.host = host
        self.socket = bind(host, port)
        self.port = self.socket.getsockname()[1]
        # a service app carries its settings; any other app (the webcam's live view) gets the defaults
        settings = (settings or getattr(getattr(app, "state", None), "settings", None) or Settings()).replace(
            log_level=log_level)
        self.server = uvicorn.Server(server_config(app, settings))
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
