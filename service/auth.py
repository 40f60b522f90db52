"""The API key: when ``SPIKEDET_API_KEY`` is set, the routes of :func:`key_required_router` need it in the
``api_key_header`` header (401 otherwise, compared in constant time)."""

# No "from __future__ import annotations": FastAPI must see the real Annotated[...] of the dependency.

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Security
from fastapi.security import APIKeyHeader

from spikedet.service.errors import ApiError, responses
from spikedet.service.settings import Settings


def require_key(settings: Settings):
    """The dependency that checks the key of ``settings`` (nothing to check when no key is set)."""
    scheme = APIKeyHeader(name=settings.api_key_header, auto_error=False,
                          description="required only when the server sets SPIKEDET_API_KEY")

    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop for every request
    async def check(given: Annotated[str | None, Security(scheme)] = None) -> None:
        if settings.api_key is None:
            return
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), settings.api_key.encode()):
            raise ApiError(401, f"missing or wrong API key (send it in the {settings.api_key_header} header)",
                           {"WWW-Authenticate": f'ApiKey header="{settings.api_key_header}"'})

    return check


def key_required_router(settings: Settings) -> APIRouter:
    """A router under ``/v1`` whose every route needs the API key (when one is set)."""
    return APIRouter(prefix="/v1", dependencies=[Depends(require_key(settings))], responses=responses(401))
