"""The ``Host`` header check (setting ``trusted_hosts``): a page on another site that rebinds its DNS name to
this server's address sends its own name as ``Host``, so answering only the expected names keeps such a
page from reading an open API. A pure ASGI wrapper (Starlette's ``TrustedHostMiddleware`` answers plain
text); the refusal is a JSON 400 like every other error."""

from __future__ import annotations

import json


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``host`` (a Host header value, port included or not) matches a pattern: a name, or
    ``*.domain`` for any name under the domain."""
    name = host.strip().lower()
    if name.startswith("["):  # [IPv6]:port
        name = name[: name.find("]") + 1]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    for pattern in patterns:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
            return True
    return False


class TrustedHosts:
    """ASGI middleware: HTTP requests whose Host is not trusted get a JSON 400, WebSockets are closed."""

    def __init__(self, app, patterns: tuple[str, ...]):
        self.app = app
        self.patterns = patterns

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if host_allowed(host, self.patterns):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        body = json.dumps({"error": f"untrusted Host header {host[:100]!r}"}).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
