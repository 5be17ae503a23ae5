"""``[xca]``: communities as TOML tables or one environment variable, checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import CommunitySettings, load_settings
from gateway.errors import ConfigError

HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"


def test_communities_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text(
        f'[xca]\nenabled = true\nhome_community_id = "{HOME}"\ntimeout = 5\n'
        '[xca.communities."urn:oid:1.2.3"]\nurl = "https://b.example/xca/rg"\n'
        'patient_id_domain = "1.3.6.1.4.1.99"\n'
        '[xca.communities."urn:oid:1.2.4"]\nurl = "http://c.example/xca/rg"\n'
    )
    xca = load_settings(config, environ={}).xca
    assert xca.enabled and xca.timeout == 5
    assert xca.communities == {
        "urn:oid:1.2.3": CommunitySettings(
            url="https://b.example/xca/rg", patient_id_domain="1.3.6.1.4.1.99"
        ),
        "urn:oid:1.2.4": CommunitySettings(url="http://c.example/xca/rg"),
    }


def test_communities_from_the_environment_and_home_from_the_registry() -> None:
    settings = load_settings(
        environ={
            "XDSI_XCA_ENABLED": "true",
            "XDSI_REGISTRY_HOME_COMMUNITY_ID": HOME,
            "XDSI_XCA_COMMUNITIES": "urn:oid:1.2.3=http://b/xca/rg|1.3.6.1.4.1.99, "
            "urn:oid:1.2.4=http://c/xca/rg",
        }
    )
    assert settings.xca.home(settings) == HOME
    assert settings.xca.communities["urn:oid:1.2.3"].patient_id_domain == "1.3.6.1.4.1.99"
    assert settings.xca.communities["urn:oid:1.2.4"].url == "http://c/xca/rg"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"XDSI_XCA_ENABLED": "true"}, "xca.home_community_id: required"),
        ({"XDSI_XCA_HOME_COMMUNITY_ID": "1.2.3"}, "expected urn:oid:<OID>"),
        ({"XDSI_XCA_COMMUNITIES": "1.2.3=http://b/xca/rg"}, "the table name must be urn:oid"),
        ({"XDSI_XCA_COMMUNITIES": "urn:oid:1.2.3=ftp://b"}, '"urn:oid:1.2.3".url: expected'),
        ({"XDSI_XCA_COMMUNITIES": "urn:oid:1.2.3"}, "expected id=url|patient_id_domain"),
        ({"XDSI_XCA_COMMUNITIES": "urn:oid:1.2.3=http://b|x.y"}, "patient_id_domain: expected"),
        ({"XDSI_XCA_TIMEOUT": "0"}, "xca.timeout: must be greater than 0"),
        (
            {"XDSI_XCA_HOME_COMMUNITY_ID": HOME, "XDSI_XCA_COMMUNITIES": f"{HOME}=http://b"},
            "own homeCommunityId",
        ),
    ],
)
def test_bad_xca_settings_stop_start_up(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("|", r"\|")):
        load_settings(environ=environ)


def test_an_unknown_key_in_a_community_table_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('[xca.communities."urn:oid:1.2.3"]\nurl = "http://b"\nport = 1\n')
    with pytest.raises(ConfigError, match=r'xca.communities."urn:oid:1.2.3".port: unknown'):
        load_settings(config, environ={})
