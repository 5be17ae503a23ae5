"""The deployment examples of README "Deployment at scale" (issue 15): ``config/gateway-node.toml
.example`` is a configuration ``xdsi-gateway config`` accepts (with demo certificates in place of
the node's files), and HAProxy accepts ``config/haproxy.cfg.example`` (``haproxy -c``, with the
balancer's demo certificate), balancing onto the ports the node example listens on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_settings

CONFIG = Path(__file__).resolve().parents[3] / "config"
NODE = CONFIG / "gateway-node.toml.example"
HAPROXY_EXAMPLE = CONFIG / "haproxy.cfg.example"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def demo_certificates(folder: Path, node: str, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["certs", "init", str(folder), "--nodes", node]) == 0
    capsys.readouterr()
    return folder


def node_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The node example with its paths moved below ``tmp_path`` (demo certificates for TLS)."""
    certs = demo_certificates(tmp_path / "certs", "node1", capsys)
    text = NODE.read_text()
    moved = {
        "/etc/xdsi-gateway/tls/node1.pem": certs / "node1.pem",
        "/etc/xdsi-gateway/tls/node1.key": certs / "node1.key",
        "/etc/xdsi-gateway/tls/domain-ca.pem": certs / "ca.pem",
        "/var/lib/xdsi-gateway": tmp_path / "data",
        "/srv/xdsi": tmp_path / "shared",
    }
    for old, new in moved.items():
        assert old in text, old
        text = text.replace(old, str(new))
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    return config


def test_node_example_is_a_valid_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = node_example(tmp_path, capsys)
    assert main(["config", "--config", str(config)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["gateway"]["database_url"].startswith("postgresql://")
    assert printed["tls"]["enabled"] is True and printed["http"]["workers"] == 2
    settings = load_settings(config, environ={})
    shared = tmp_path / "shared"
    assert Path(settings.repository.storage_dir) == shared / "repository"
    assert Path(settings.imaging_source.storage_dir) == shared / "imaging"


def test_haproxy_accepts_the_example_and_balances_onto_the_node_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    certs = demo_certificates(tmp_path / "certs", "balancer", capsys)
    haproxy_files = tmp_path / "haproxy"
    haproxy_files.mkdir()
    # HAProxy's crt: certificate and key in one PEM file
    (haproxy_files / "balancer.pem").write_text(
        (certs / "balancer.pem").read_text() + (certs / "balancer.key").read_text()
    )
    shutil.copy(certs / "ca.pem", haproxy_files / "domain-ca.pem")
    text = HAPROXY_EXAMPLE.read_text()
    assert "/etc/haproxy/xdsi/" in text
    config = tmp_path / "haproxy.cfg"
    config.write_text(text.replace("/etc/haproxy/xdsi/", f"{haproxy_files}/"))
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    settings = load_settings(node_example(tmp_path / "node", capsys), environ={})
    ports = {int(p) for p in re.findall(r"^\s*server node\d+ [\d.]+:(\d+)", text, re.MULTILINE)}
    assert ports == {settings.http.port, settings.hl7.mllp_port, settings.imaging_source.dicom_port}
    assert f"check port {settings.http.port} check-ssl" in text
