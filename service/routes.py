"""The service's endpoints.

Public: ``GET /healthz``, ``GET /readyz``, ``GET /v1/limits``, the web page ``GET /``. Behind the API key
(when one is set): ``POST /v1/detect`` and ``GET /v1/model``. The routers are built from the settings so
that the documented bounds of the query parameters are the configured ones.
"""

# No "from __future__ import annotations": FastAPI must see the real Annotated[...] with the settings' bounds.

import hmac
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from spikedet.service.errors import ApiError
from spikedet.service.settings import Settings
from spikedet.service.state import ServiceState
from spikedet.service.uploads import FIELD, read_image

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _errors(*codes: int) -> dict:
    text = {
        401: "API key missing or wrong", 408: "upload too slow", 413: "upload or image too large",
        415: "not a JPEG, PNG, WebP or BMP image", 400: "empty, corrupt or truncated image",
        422: "bad parameter or missing 'image' field", 503: "model loading, or busy (Retry-After)",
    }
    return {c: {"description": text.get(c, "error"), "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for c in codes}


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def build_routers(settings: Settings) -> list[APIRouter]:
    scheme = APIKeyHeader(name=settings.api_key_header, auto_error=False,
                          description="required only when the server sets SPIKEDET_API_KEY")

    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop for every request
    async def require_key(given: Annotated[str | None, Security(scheme)] = None) -> None:
        if settings.api_key is None:
            return
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), settings.api_key.encode()):
            raise ApiError(401, f"missing or wrong API key (send it in the {settings.api_key_header} header)",
                           {"WWW-Authenticate": f'ApiKey header="{settings.api_key_header}"'})

    public = APIRouter()
    private = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=_errors(401))

    @public.get("/healthz", tags=["health"], summary="liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @public.get("/readyz", tags=["health"], summary="readiness: 200 once the model is loaded, else 503",
                responses=_errors(503))
    async def readyz(request: Request):
        state = _state(request)
        try:
            state.require_ready()
        except ApiError as e:  # the same answer /v1/detect gives, plus the state
            return JSONResponse({"error": e.message, "status": state.status}, status_code=e.status, headers=e.headers)
        return {"status": "ready", "weights": (state.info or {}).get("weights"), "load_seconds": state.load_seconds,
                "in_flight": state.in_flight, "max_concurrency": settings.max_concurrency,
                "workers": settings.workers, "torch_threads": state.torch_threads, "served": state.served,
                "rejected_busy": state.rejected_busy}

    @public.get("/v1/limits", tags=["model"], summary="upload limits, parameter ranges and defaults")
    async def limits() -> dict:
        return settings.public()

    @private.get("/model", tags=["model"], summary="the loaded model (architecture, neurons, classes)",
                 responses=_errors(503))
    async def model(request: Request) -> dict:
        state = _state(request)
        state.require_ready()
        return dict(state.info or {})

    body_doc = {
        "requestBody": {
            "required": True,
            "description": f"the image as multipart field '{FIELD}', or as the raw body with Content-Type image/*",
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [FIELD],
                               "properties": {FIELD: {"type": "string", "format": "binary"}}},
                },
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
                "image/bmp": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }

    @private.post(
        "/detect", tags=["detect"], summary="detect objects in one image and estimate the energy spent",
        description=(
            "Answers `Detector.detect(image, conf, iou, imgsz).to_dict(layers)`: detections with boxes in "
            "original-image pixels, the energy report (SNN vs ANN, efficiency, caveat), timings, the model. "
            f"Uploads over {settings.max_upload_bytes:,} bytes or images over {settings.max_pixels:,} pixels "
            f"get 413; at most {settings.max_concurrency} requests run at once, others get 503 with Retry-After."
        ),
        openapi_extra=body_doc, responses=_errors(400, 408, 413, 415, 422, 503),
    )
    async def detect(
        request: Request,
        conf: Annotated[float, Query(ge=0.0, le=1.0, description="confidence threshold")] = settings.conf,
        iou: Annotated[float, Query(ge=0.0, le=1.0, description="NMS IoU threshold")] = settings.iou,
        imgsz: Annotated[int, Query(ge=settings.imgsz_min, le=settings.imgsz_max, multiple_of=32,
                                    description="inference size in pixels (multiple of 32)")] = settings.imgsz,
        layers: Annotated[bool, Query(description="add the per-layer energy list")] = False,
    ):
        state = _state(request)
        state.require_ready()
        state.admit()
        try:
            start = time.perf_counter()
            data = await read_image(request, settings)
            received = time.perf_counter()
            image, decode_ms = await anyio.to_thread.run_sync(state.decode, data, limiter=state.decode_limiter)
            del data
            decoded = time.perf_counter()
            payload, detect_ms = await anyio.to_thread.run_sync(state.detect, image, conf, iou, imgsz, layers,
                                                                limiter=state.infer_limiter)
            done = time.perf_counter()
        finally:
            state.release()
        state.served += 1
        steps = {"upload": (received - start) * 1e3, "decode": decode_ms,
                 "queue": max(0.0, (done - decoded) * 1e3 - detect_ms), "detect": detect_ms}
        timing = ", ".join(f"{step};dur={ms:.1f}" for step, ms in steps.items())
        return JSONResponse(payload, headers={"Server-Timing": timing})

    return [public, private]
