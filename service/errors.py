"""Errors of the service: every one is answered as JSON ``{"error": "..."}`` with its HTTP status.

:class:`ApiError` is raised by the service's own code; :func:`install` also rewrites FastAPI's and
Starlette's errors (404, 405, 422 ...) and any unexpected exception (500) into the same shape.
"""

from __future__ import annotations

import logging

log = logging.getLogger("spikedet.service")

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_MEANING = {
    401: "API key missing or wrong", 408: "upload too slow", 413: "upload or image too large",
    415: "not a JPEG, PNG, WebP or BMP image", 400: "empty, corrupt or truncated image",
    422: "bad parameter or missing 'image' field", 503: "model loading, or busy (Retry-After)",
}


class ApiError(Exception):
    """An answer with an error: ``status`` (HTTP), a one-line ``message`` and optional extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def responses(*codes: int) -> dict:
    """The OpenAPI ``responses`` of a route that can answer these error statuses (all JSON ``{"error"}``)."""
    return {c: {"description": _MEANING.get(c, "error"), "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for c in codes}


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install(app) -> None:
    """Register the JSON error handlers on a FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def api_error(request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    async def http_error(request, exc: HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"not found: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    async def validation_error(request, exc: RequestValidationError):
        return error_response(422, "; ".join(_describe(e) for e in exc.errors()) or "invalid request")

    async def unexpected(request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def _describe(error: dict) -> str:
    where = [str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path", "header")]
    message = str(error.get("msg", "invalid value"))
    value = error.get("input")
    simple = value is not None and not isinstance(value, (dict, list)) and len(repr(value)) < 60
    shown = f" (got {value!r})" if simple else ""
    return f"{'.'.join(where) or 'request'}: {message}{shown}"
