"""``POST /v1/detect`` (behind the API key): one image in, its detections and energy report out.

The route is thin: admission and the model are :mod:`~spikedet.service.state`'s, the upload
:mod:`~spikedet.service.uploads`', decoding :mod:`~spikedet.service.images`'.
"""

# No "from __future__ import annotations": FastAPI must see the real Annotated[...] with the settings' bounds.

import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from spikedet.io.images import DEFAULT_STRIDE
from spikedet.service.auth import key_required_router
from spikedet.service.errors import responses
from spikedet.service.settings import Settings
from spikedet.service.state import service_state
from spikedet.service.uploads import FIELD, read_image

IMAGE_BODY = {
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


def build_router(settings: Settings) -> APIRouter:
    router = key_required_router(settings)

    @router.post(
        "/detect", tags=["detect"], summary="detect objects in one image and estimate the energy spent",
        description=(
            "Answers `Detector.detect(image, conf, iou, imgsz).to_dict(layers)`: detections with boxes in "
            "original-image pixels, the energy report (SNN vs ANN under three energy models, each with its baseline, "
            "constants and assumptions; spikes per input element), timings, the model. "
            f"Uploads over {settings.max_upload_bytes:,} bytes or images over {settings.max_pixels:,} pixels "
            f"get 413; at most {settings.max_concurrency} requests run at once, others get 503 with Retry-After."
        ),
        openapi_extra=IMAGE_BODY, responses=responses(400, 408, 413, 415, 422, 503),
    )
    async def detect(
        request: Request,
        conf: Annotated[float, Query(ge=0.0, le=1.0, description="confidence threshold")] = settings.conf,
        iou: Annotated[float, Query(ge=0.0, le=1.0, description="NMS IoU threshold")] = settings.iou,
        imgsz: Annotated[int, Query(ge=settings.imgsz_min, le=settings.imgsz_max, multiple_of=DEFAULT_STRIDE,
                                    description=f"inference size in pixels (multiple of {DEFAULT_STRIDE})")
                         ] = settings.imgsz,
        layers: Annotated[bool, Query(description="add the per-layer energy list")] = False,
    ):
        state = service_state(request)
        state.require_ready()
        state.admit()
        try:
            start = time.perf_counter()
            data = await read_image(request, settings)
            received = time.perf_counter()
            # header only: 400/413/415 before any pixel is decoded; in a worker thread, since a crafted header
            # (many compressed text chunks) can take Pillow long enough to stall every other endpoint
            pixels = await anyio.to_thread.run_sync(state.pixels, data, limiter=state.decode_limiter)
            await state.pixel_budget.acquire(pixels)
            try:
                waited = time.perf_counter()
                image, decode_ms = await anyio.to_thread.run_sync(state.decode, data, limiter=state.decode_limiter)
                del data
                decoded = time.perf_counter()
                payload, detect_ms = await anyio.to_thread.run_sync(state.detect, image, conf, iou, imgsz, layers,
                                                                    limiter=state.infer_limiter)
                del image
                done = time.perf_counter()
            finally:
                state.pixel_budget.release(pixels)
        finally:
            state.release()
        state.served += 1
        steps = {"upload": (received - start) * 1e3, "pixels": (waited - received) * 1e3, "decode": decode_ms,
                 "queue": max(0.0, (done - decoded) * 1e3 - detect_ms), "detect": detect_ms}
        timing = ", ".join(f"{step};dur={ms:.1f}" for step, ms in steps.items())
        return JSONResponse(payload, headers={"Server-Timing": timing})

    return router
