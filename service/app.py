"""The FastAPI application: ``create_app(settings)`` builds one; ``spikedet.service.main`` holds the one
built from the environment (``uvicorn spikedet.service.main:app``); ``spikedet serve`` runs it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from spikedet.service import errors
from spikedet.service.hosts import TrustedHosts
from spikedet.service.routes import build_routers
from spikedet.service.settings import Settings
from spikedet.service.state import DetectorFactory, LoadFailure, ServiceState

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page loads nothing from elsewhere; the policy makes sure of it.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

DESCRIPTION = """Spiking object detection with a per-image energy estimate (SNN vs ANN).

`POST /v1/detect` with an image (multipart field `image`, or the raw body with `Content-Type: image/*`).
Every error is JSON `{"error": "..."}`. Limits are settings read from `SPIKEDET_*` environment variables;
`GET /v1/limits` lists them.
"""


def create_app(settings: Settings | None = None, detector_factory: DetectorFactory | None = None,
               on_load_failure: LoadFailure | None = None) -> FastAPI:
    """A service app. ``detector_factory(settings)`` makes a detector (default: ``spikedet.detector.Detector``);
    ``on_load_failure(message)`` is called if the model fails to load (default: /readyz reports it)."""
    from spikedet import __version__

    settings = settings or Settings.from_env()
    state = ServiceState(settings, detector_factory, on_load_failure)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()  # loads in the background: /readyz says 503 until the model is ready
        yield

    local_docs = _swagger_assets()
    app = FastAPI(title="spikedet", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None if local_docs else "/docs", redoc_url=None)
    app.state.service = state
    app.state.settings = settings
    errors.install(app)
    for router in build_routers(settings):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                                 "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if local_docs:
        _serve_docs(app, local_docs)
    if settings.host_patterns:
        app.add_middleware(TrustedHosts, patterns=settings.host_patterns)
    return app


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the swagger-ui-bundle package, so /docs works offline (else: FastAPI's CDN)."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _serve_docs(app: FastAPI, assets: Path) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url, title="spikedet API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
        page.headers["Content-Security-Policy"] = docs_policy(page.body.decode())
        return page


def docs_policy(html: str) -> str:
    """The Content-Security-Policy of the docs page: its files from here only, and its one inline script
    (Swagger UI's start-up, built by FastAPI) allowed by its hash, so no other inline script can run.
    Swagger UI sets inline styles and shows data: images, which the policy allows."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL))
    return ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' {hashes}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
