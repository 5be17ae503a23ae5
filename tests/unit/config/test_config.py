"""Configuration: defaults, TOML, environment overrides, and one-line errors (exit code 2)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_are_those_of_architecture_md() -> None:
    s = load_settings(environ={})
    assert (s.gateway.data_dir, s.http.host, s.http.port) == ("var", "127.0.0.1", 8080)
    assert s.registry.enabled and s.repository.enabled and s.imaging_source.enabled
    assert s.registry.patient_id_domain == "1.3.6.1.4.1.21367.13.20.1000"
    assert s.repository.unique_id == "1.3.6.1.4.1.21367.13.40.100"
    assert s.repository.registry_url == ""
    assert s.imaging_source.unique_id == "1.3.6.1.4.1.21367.13.80.100"
    assert (s.imaging_source.ae_title, s.imaging_source.dicom_port) == ("XDSI_SOURCE", 11112)
    assert s.imaging_source.study_idle_seconds == 30
    assert (s.hl7.enabled, s.hl7.mllp_port) == (True, 2575)
    assert s.database_url == f"sqlite:///{s.data_dir / 'registry.sqlite'}"


def test_example_file_documents_exactly_the_defaults() -> None:
    assert load_settings(ROOT / "config" / "gateway.toml", environ={}) == Settings()


def test_example_file_names_every_key() -> None:
    # Equal settings could hide a key the file leaves out (its default applies): every key of
    # every section must be written in the documented example.
    written = tomllib.loads((ROOT / "config" / "gateway.toml").read_text())
    for section in dataclasses.fields(Settings):
        keys = {f.name for f in dataclasses.fields(getattr(Settings(), section.name))}
        assert keys <= set(written.get(section.name, {})), section.name
    assert written["imaging_source"]["publish_parallel"] == 4


def test_toml_then_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text("[http]\nport = 9000\n[registry]\nenabled = false\n")
    s = load_settings(
        cfg, environ={"XDSI_HTTP_PORT": "18080", "XDSI_IMAGING_SOURCE_AE_TITLE": "AE2"}
    )
    assert s.http.port == 18080  # environment beats the file
    assert s.registry.enabled is False
    assert s.imaging_source.ae_title == "AE2"


def test_relative_paths_resolve_below_data_dir(tmp_path: Path) -> None:
    s = load_settings(environ={"XDSI_GATEWAY_DATA_DIR": str(tmp_path)})
    assert s.path("codes.xml") == tmp_path / "codes.xml"
    assert s.path("/etc/x") == Path("/etc/x")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[http]\nprot = 1\n", {}, "http.prot: unknown configuration key"),
        ("[htp]\nport = 1\n", {}, "htp: unknown configuration section"),
        ('[http]\nport = "x"\n', {}, "http.port: expected an integer"),
        ("[registry]\nenabled = 3\n", {}, "registry.enabled: expected true or false"),
        ("", {"XDSI_HTTP_PORT": "eighty"}, "http.port: expected an integer"),
        ("", {"XDSI_REGISTRY_ENABLED": "maybe"}, "registry.enabled: expected true or false"),
        ("[http]\nport = 70000\n", {}, "http.port: port must be between 0 and 65535"),
        ('[log]\nlevel = "LOUD"\n', {}, "log.level"),
        ("[http\n", {}, "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ=env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args", [["serve"], ["config"]])
def test_cli_exits_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[http]\nbogus = true\n")
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "http.bogus" in lines[0]


def test_cli_env_override_bad_value_exits_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "XDSI_HTTP_PORT": "abc"}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "xdsi-gateway: configuration error: http.port: expected an integer, got 'abc'"
    )


def test_consumer_tables_from_toml_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('[consumer.repositories]\n"1.2.3" = "http://127.0.0.1:9/xds/repository"\n')
    s = load_settings(
        cfg, environ={"XDSI_CONSUMER_IMAGING_SOURCES": "1.2.4=http://a/x, 1.2.5=http://b/y"}
    )
    assert s.consumer.repositories == {"1.2.3": "http://127.0.0.1:9/xds/repository"}
    assert s.consumer.imaging_sources == {"1.2.4": "http://a/x", "1.2.5": "http://b/y"}


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[consumer]\nrepositories = "x"\n', {}, "consumer.repositories: expected a table"),
        (
            '[consumer.repositories]\n"1.2" = 3\n',
            {},
            "consumer.repositories.1.2: expected a string",
        ),
        ("", {"XDSI_CONSUMER_REPOSITORIES": "1.2.3"}, "consumer.repositories: expected id=value"),
    ],
)
def test_bad_consumer_tables(tmp_path: Path, toml: str, env: dict[str, str], message: str) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(cfg, environ=env)
