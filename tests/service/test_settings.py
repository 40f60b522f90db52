"""Settings (service/settings.py): read from SPIKEDET_* variables, bad values named in one line, all documented."""

from __future__ import annotations

import pytest

from spikedet.service.settings import Settings, SettingsError
from tests.service.common import ROOT


def test_settings_from_environment():
    s = Settings.from_env({"SPIKEDET_MAX_UPLOAD_BYTES": "2_000_000", "SPIKEDET_ALLOW_PICKLE": "yes",
                           "SPIKEDET_CONF": "0.4", "SPIKEDET_API_KEY": "k", "SPIKEDET_PORT": "",
                           "SPIKEDET_IMGSZ": "320"})
    assert s.max_upload_bytes == 2_000_000 and s.allow_pickle is True and s.conf == 0.4
    assert s.api_key == "k" and s.port == 8000 and s.imgsz == 320
    assert Settings.from_env({}, workers=3).workers == 3
    for env, needle in [
        ({"SPIKEDET_PORT": "eighty"}, "SPIKEDET_PORT must be an integer"),
        ({"SPIKEDET_ALLOW_PICKLE": "maybe"}, "SPIKEDET_ALLOW_PICKLE"),
        ({"SPIKEDET_IMGSZ": "100"}, "multiple of 32"),
        ({"SPIKEDET_MAX_CONCURRENCY": "0"}, "SPIKEDET_MAX_CONCURRENCY must be >= 1"),
        ({"SPIKEDET_CONF": "1.5"}, "SPIKEDET_CONF must be <= 1"),
        ({"SPIKEDET_IMGSZ": "1600"}, "SPIKEDET_IMGSZ_MAX"),
        ({"SPIKEDET_API_KEY": "clé"}, "SPIKEDET_API_KEY must be ASCII"),  # a header could never carry it
        ({"SPIKEDET_LOG_LEVEL": "loud"}, "trace"),
    ]:
        with pytest.raises(SettingsError, match=needle):
            Settings.from_env(env)


def test_every_setting_is_documented():
    from spikedet.service.settings import describe

    readme = (ROOT / "service" / "README.md").read_text()
    for name, _, help_text in describe():
        assert help_text
        assert name in readme, f"{name} missing from service/README.md"
