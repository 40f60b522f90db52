"""The model and its limits: ``GET /v1/limits`` (public) and ``GET /v1/model`` (behind the API key)."""

from fastapi import APIRouter, Request

from spikedet.service.auth import key_required_router
from spikedet.service.errors import responses
from spikedet.service.settings import Settings
from spikedet.service.state import service_state


def build_routers(settings: Settings) -> list[APIRouter]:
    public = APIRouter()
    private = key_required_router(settings)

    @public.get("/v1/limits", tags=["model"], summary="upload limits, parameter ranges and defaults")
    async def limits() -> dict:
        return settings.public()

    @private.get("/model", tags=["model"], summary="the loaded model (architecture, neurons, classes)",
                 responses=responses(503))
    async def model(request: Request) -> dict:
        state = service_state(request)
        state.require_ready()
        return dict(state.info or {})

    return [public, private]
