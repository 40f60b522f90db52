"""The app built from the environment's ``SPIKEDET_*`` settings: ``uvicorn spikedet.service.main:app``."""

from spikedet.service.app import create_app
from spikedet.service.settings import Settings

settings = Settings.from_env()
app = create_app(settings)
