"""[[imaging_source.forward]], [notify], [[notify.webhook]] and [xdr]: arrays of tables from the
file and JSON from the environment, checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings, settings_as_dict, settings_from_dict
from gateway.errors import ConfigError


def test_arrays_of_tables_from_file_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(
        "[[imaging_source.forward]]\n"
        'destination = "PACS@pacs.example:104"\nmodality = "CT"\n'
        "[[notify.webhook]]\n"
        'url = "https://ai.example/h"\nsecret = "s"\n'
        'filter = { format_code = "1.2.840.10008.5.1.4.1.1.88.59" }\n'
        "[xdr]\nauto_import = true\n"
    )
    s = load_settings(cfg, environ={})
    assert s.imaging_source.forward[0].destination == "PACS@pacs.example:104"
    assert s.imaging_source.forward[0].modality == "CT"
    assert s.notify.webhook[0].filter == {"format_code": "1.2.840.10008.5.1.4.1.1.88.59"}
    assert s.xdr.auto_import is True
    assert settings_from_dict(settings_as_dict(s)) == s  # serve --workers hands them on
    env = load_settings(cfg, environ={"XDSI_NOTIFY_WEBHOOK": '[{"url": "http://other.example/h"}]'})
    assert [w.url for w in env.notify.webhook] == ["http://other.example/h"]


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[[imaging_source.forward]]\ndestination = "pacs:104"\n', {}, "AET@host:port"),
        ('[[imaging_source.forward]]\ncolour = "red"\n', {}, r"forward\[1\]\.colour"),
        ('[[notify.webhook]]\nurl = "ftp://x"\n', {}, "http"),
        ("[notify]\nwebhook = 3\n", {}, "array of tables"),
        ("", {"XDSI_NOTIFY_WEBHOOK": "{not json"}, "JSON array"),
        ("[notify]\nretry_max_seconds = 1\nretry_initial_seconds = 5\n", {}, "retry_max"),
    ],
)
def test_bad_values_stop_start_up(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, environ=env)
