"""Sample images for the page's "try a sample image" button: ``GET /v1/samples/bus.jpg`` (public).

The image ships with Ultralytics (its package assets), so the service serves it from there: nothing is
downloaded and nothing is copied into spikedet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from spikedet.errors import SpikedetError
from spikedet.offline import import_ultralytics
from spikedet.service.errors import error_response, responses
from spikedet.service.settings import Settings

#: The samples the page offers, by the name it asks for.
SAMPLES = ("bus.jpg", "zidane.jpg")


def sample_path(name: str) -> Path:
    """The shipped sample ``name`` (one of :data:`SAMPLES`), or :class:`SpikedetError`."""
    path = Path(import_ultralytics().ASSETS) / name
    if name not in SAMPLES or not path.is_file():
        raise SpikedetError(f"no sample image {name!r} (samples: {', '.join(SAMPLES)})")
    return path


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/samples/{name}", tags=["samples"], summary="a sample image (shipped with Ultralytics)",
                response_class=FileResponse, responses=responses(404))
    async def sample(name: str):
        try:
            path = sample_path(name)
        except SpikedetError as e:
            return error_response(404, str(e))
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    return router
