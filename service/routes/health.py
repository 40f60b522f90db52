"""Health: ``GET /healthz`` (the process answers) and ``GET /readyz`` (200 once the model is loaded, else 503)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from spikedet.service.errors import ApiError, responses
from spikedet.service.settings import Settings
from spikedet.service.state import service_state


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", tags=["health"], summary="liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", tags=["health"], summary="readiness: 200 once the model is loaded, else 503",
                responses=responses(503))
    async def readyz(request: Request):
        state = service_state(request)
        try:
            state.require_ready()
        except ApiError as e:  # the same answer /v1/detect gives, plus the state
            return JSONResponse({"error": e.message, "status": state.status}, status_code=e.status, headers=e.headers)
        return {"status": "ready", "weights": (state.info or {}).get("weights"), "load_seconds": state.load_seconds,
                "in_flight": state.in_flight, "max_concurrency": settings.max_concurrency,
                "workers": settings.workers, "torch_threads": state.torch_threads, "served": state.served,
                "rejected_busy": state.rejected_busy}

    return router
