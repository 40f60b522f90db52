"""The service's endpoints, one module per concern; :func:`build_routers` lists them for ``create_app``.

Public: ``GET /healthz``, ``GET /readyz`` (:mod:`.health`), ``GET /v1/limits`` (:mod:`.model`),
``GET /v1/samples/bus.jpg`` (:mod:`.samples`), the web page
``GET /`` (``app.py``). Behind the API key (when one is set, :mod:`spikedet.service.auth`): ``GET /v1/model``
(:mod:`.model`) and ``POST /v1/detect`` (:mod:`.detect`). The routers are built from the settings so that the
documented bounds of the query parameters are the configured ones.
"""

from __future__ import annotations

from fastapi import APIRouter

from spikedet.service.routes import detect, health, model, samples
from spikedet.service.settings import Settings


def build_routers(settings: Settings) -> list[APIRouter]:
    return [health.build_router(settings), *model.build_routers(settings), detect.build_router(settings),
            samples.build_router(settings)]
