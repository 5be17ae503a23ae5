"""/ui and /metrics behind the secure node: TLS (ITI-19) and the access rules by client
certificate (rule names ``UI`` and ``METRICS``), and the session cookie marked ``Secure``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.security.certs import DomainFiles, init_domain
from gateway.security.tls import client_context, requests_session
from gateway.ui.accounts import add_user

RULES = """
[access]
default = "deny"
[[access.rule]]
name = "operators"
subject = ["CN=hospital-a,O=XDS-I Demo Affinity Domain"]
transactions = ["UI"]
[[access.rule]]
name = "monitoring"
subject = ["CN=hospital-b,O=XDS-I Demo Affinity Domain"]
transactions = ["METRICS"]
"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, DomainFiles]]:
    domain = init_domain(tmp_path_factory.mktemp("certs"))
    folder = tmp_path_factory.mktemp("node")
    region = domain.nodes["region"]
    (folder / "rules.toml").write_text(RULES)
    add_user(folder / "accounts", "alice", "pw")
    (folder / "gateway.toml").write_text(
        "\n".join(
            [
                f'[gateway]\ndata_dir = "{folder / "data"}"',
                "[http]\nport = 0",
                "[hl7]\nmllp_port = 0",
                "[imaging_source]\ndicom_port = 0",
                '[log]\nlevel = "WARNING"',
                f'[tls]\nenabled = true\ncertificate = "{region.certificate}"',
                f'private_key = "{region.private_key}"\nca_file = "{domain.ca_certificate}"',
                f'[access]\nrules_file = "{folder / "rules.toml"}"',
                f'[ui]\naccounts_file = "{folder / "accounts"}"',
            ]
        )
        + "\n"
    )
    gw = Gateway(load_settings(folder / "gateway.toml", environ={}))
    gw.start()
    try:
        yield gw, domain
    finally:
        gw.stop()


def _session(domain: DomainFiles, node: str) -> requests.Session:
    files = domain.nodes[node]
    context = client_context(domain.ca_certificate, files.certificate, files.private_key)
    return requests_session(context)


def test_access_rules_by_certificate(secured: tuple[Gateway, DomainFiles]) -> None:
    gw, domain = secured
    base = gw.base_url
    assert base.startswith("https://")
    operator, monitor = _session(domain, "hospital-a"), _session(domain, "hospital-b")
    assert operator.get(base + "/ui/login", timeout=30).status_code == 200
    assert operator.get(base + "/metrics", timeout=30).status_code == 403
    assert monitor.get(base + "/metrics", timeout=30).status_code == 200
    for path in ("/ui/login", "/ui/", "/ui/static/ui.css"):
        answer = monitor.get(base + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 403, path  # the rules come first, static files included


def test_session_cookie_is_secure_under_tls(secured: tuple[Gateway, DomainFiles]) -> None:
    gw, domain = secured
    s = _session(domain, "hospital-a")
    page = s.get(gw.base_url + "/ui/login", timeout=30)
    assert "Secure" in page.headers["Set-Cookie"]  # the pre-login cookie
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = s.post(
        gw.base_url + "/ui/login",
        data={"csrf": token.group(1), "username": "alice", "password": "pw"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "xdsi_ui_session=" in cookie
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert s.get(gw.base_url + "/ui/", timeout=30).status_code == 200
