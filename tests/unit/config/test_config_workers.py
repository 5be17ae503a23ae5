"""Settings handed from the supervisor to its workers, and ``http.workers``."""

from __future__ import annotations

import json

import pytest

from gateway.config import load_settings, settings_as_dict, settings_from_dict
from gateway.errors import ConfigError


def test_settings_survive_the_trip_to_a_worker() -> None:
    settings = load_settings(
        environ={
            "XDSI_HTTP_WORKERS": "3",
            "XDSI_HTTP_PORT": "0",
            "XDSI_REGISTRY_DATABASE_URL": "postgresql://gw@db/xds",
            "XDSI_CONSUMER_REPOSITORIES": "1.2.3=http://r/xds/repository",
            "XDSI_LOG_PATIENT_IDS": "false",
        }
    )
    document = json.loads(json.dumps(settings_as_dict(settings)))  # as the control line carries it
    assert settings_from_dict(document) == settings


def test_settings_from_a_worker_line_are_checked() -> None:
    document = settings_as_dict(load_settings(environ={}))
    document["http"]["workers"] = 0
    with pytest.raises(ConfigError, match=r"http\.workers: must be greater than 0, got 0"):
        settings_from_dict(document)
    with pytest.raises(ConfigError, match="nonsense: unknown configuration section"):
        settings_from_dict({"nonsense": {}})
