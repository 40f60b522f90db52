"""The Host header check (service/hosts.py): with trusted_hosts set, a request naming another host (a DNS
rebinding page) gets a JSON 400; without it, any host is served."""

from __future__ import annotations

import httpx
import pytest

from spikedet.service.hosts import host_allowed
from spikedet.service.settings import Settings, SettingsError
from tests.service.common import assert_error


def test_host_patterns_match_names_ports_and_subdomains():
    patterns = ("localhost", "api.example.com", "*.internal.example.com", "[::1]")
    for host in ("localhost", "localhost:8000", "API.example.com", "a.internal.example.com:80", "[::1]:8000"):
        assert host_allowed(host, patterns), host
    for host in ("", "evil.com", "example.com", "internal.example.com", "api.example.com.evil.com",
                 "xinternal.example.com", "127.0.0.1"):
        assert not host_allowed(host, patterns), host


def test_untrusted_host_gets_a_json_400_on_every_path(fake_app):
    with fake_app(trusted_hosts="127.0.0.1, localhost") as url:
        assert httpx.get(url + "/healthz").status_code == 200  # Host: 127.0.0.1:PORT
        for path in ("/healthz", "/v1/limits", "/openapi.json", "/"):
            message = assert_error(httpx.get(url + path, headers={"Host": "attacker.example"}), 400)
            assert "untrusted Host" in message


def test_any_host_is_served_without_the_setting(fake_app):
    with fake_app() as url:
        assert httpx.get(url + "/healthz", headers={"Host": "anything.example"}).status_code == 200


def test_trusted_hosts_must_name_a_host():
    with pytest.raises(SettingsError, match="TRUSTED_HOSTS"):
        Settings(trusted_hosts=" , ")
