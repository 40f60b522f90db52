"""spikedet's HTTP detection service (installed as ``spikedet.service``).

``create_app(settings)`` (in :mod:`spikedet.service.app`) builds the FastAPI app; :mod:`.settings` reads
every limit from ``SPIKEDET_*`` environment variables; :mod:`.routes` holds the endpoints; ``spikedet
serve`` runs it with uvicorn. See ``service/README.md``.
"""
