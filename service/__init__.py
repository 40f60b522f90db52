"""spikedet's HTTP detection service (installed as ``spikedet.service``).

``create_app(settings)`` (in :mod:`spikedet.service.app`) builds the FastAPI app; :mod:`.settings` reads
every limit from ``SPIKEDET_*`` environment variables; :mod:`.routes` holds the endpoints (one module per
concern); ``spikedet serve`` runs it with uvicorn on a socket from :func:`.server.bind`.
:class:`.server.BackgroundServer` serves an app in a thread of this process, such as :mod:`.live`, the
browser view of ``spikedet webcam``. See ``service/README.md``.
"""
