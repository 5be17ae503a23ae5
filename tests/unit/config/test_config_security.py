"""The [tls], [access] and [audit] settings: defaults, start-up validation, ``certs init``."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import EXIT_CONFIG, main
from gateway.config import load_settings
from gateway.errors import ConfigError


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n' + text)
    load_settings(path, environ={})


def test_defaults_switch_everything_off() -> None:
    s = load_settings(environ={})
    assert (s.tls.enabled, s.audit.enabled, s.access.rules_file) == (False, False, "")
    assert s.tls.require_client_cert and s.tls.verify_hostname
    assert (s.audit.app_name, s.audit.queue_dir, s.audit.retry_max_seconds) == (
        "xdsi-gateway",
        "audit",
        60,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tls]\nenabled = true\n", "tls.certificate: required when tls.enabled is true"),
        (
            '[tls]\nenabled = true\ncertificate = "c.pem"\nprivate_key = "k.pem"\n'
            'ca_file = "ca.pem"\n',
            "tls.certificate: file ",
        ),
        ('[access]\nrules_file = "rules.toml"\n', "access.rules_file: file "),
        ("[audit]\nenabled = true\n", "audit.destinations: required when audit.enabled"),
        (
            '[audit]\nenabled = true\ndestinations = "tls://127.0.0.1:6514"\n',
            "audit.destinations: 'tls://127.0.0.1:6514' needs tls.enabled = true",
        ),
        (
            '[audit]\nenabled = true\ndestinations = "http://x"\n',
            "audit.destinations: expected tls://host:port",
        ),
        ("[audit]\nretry_max_seconds = 0\n", "audit.retry_max_seconds: must be greater than 0"),
        ('[tls]\nenabled = "yes"\n', "tls.enabled: expected true or false"),
    ],
)
def test_bad_security_settings_stop_start_up(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_certs_init_then_serve_config_validates(tmp_path: Path, capsys) -> None:
    assert main(["certs", "init", str(tmp_path / "certs"), "--nodes", "region"]) == 0
    printed = capsys.readouterr().out
    assert "[tls]" in printed and "enabled = true" in printed
    block = printed[printed.index("[tls]") :]
    config = tmp_path / "g.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n{block}')
    assert main(["config", "--config", str(config)]) == 0
    assert '"enabled": true' in capsys.readouterr().out
    # a second init refuses to overwrite the keys: a usage error (--force), exit 2
    assert main(["certs", "init", str(tmp_path / "certs"), "--nodes", "region"]) == 2
    assert "use --force" in capsys.readouterr().err


def test_unusable_tls_files_exit_2(tmp_path: Path, capsys) -> None:
    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text("not a certificate\n")
    config = tmp_path / "g.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path}"\n[http]\nport = 0\n[hl7]\nenabled = false\n'
        "[imaging_source]\nenabled = false\n[repository]\nenabled = false\n"
        '[tls]\nenabled = true\ncertificate = "c.pem"\nprivate_key = "k.pem"\n'
        'ca_file = "ca.pem"\n'
    )
    assert main(["serve", "--config", str(config)]) == EXIT_CONFIG
    assert "configuration error: tls:" in capsys.readouterr().err
