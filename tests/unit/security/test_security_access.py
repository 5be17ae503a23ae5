"""Access rules: subject DN / SAN to transactions, default policy, anonymous callers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.security.access import AccessRules, canonical_transaction
from gateway.security.peer import PeerIdentity

ORG = "XDS-I Demo Affinity Domain"
RULES = f"""
[access]
default = "deny"

[[access.rule]]
name = "hospitals"
subject = ["CN=hospital-a,O={ORG}", "CN=hospital-b,O={ORG}"]
transactions = ["ITI-41", "ITI-18", "ITI-43", "RAD-69", "C-STORE"]

[[access.rule]]
name = "region repository"
san = "DNS:region.example"
transactions = ["ITI-42", "ITI-18"]
"""


def _peer(cn: str, *sans: str) -> PeerIdentity:
    rdns = (("O", ORG), ("CN", cn))
    return PeerIdentity(subject=f"CN={cn},O={ORG}", rdns=rdns, sans=sans)


@pytest.fixture
def rules(tmp_path: Path) -> AccessRules:
    path = tmp_path / "access.toml"
    path.write_text(RULES)
    return AccessRules.load(path)


def test_hospital_may_not_register(rules: AccessRules) -> None:
    hospital = _peer("hospital-a", "DNS:hospital-a.example")
    for name in ("ITI-41", "ITI-18", "ITI-43", "RAD-69", "C-STORE", "RAD-68"):
        assert rules.allowed(hospital, name), name
    assert not rules.allowed(hospital, "ITI-42")
    assert "refused" in rules.explain(hospital, "ITI-42")
    assert "hospitals" in rules.explain(hospital, "ITI-42")


def test_region_by_san(rules: AccessRules) -> None:
    region = _peer("region", "DNS:Region.Example", "IP:127.0.0.1")
    assert rules.allowed(region, "ITI-42")
    assert rules.allowed(region, "iti-18")
    assert not rules.allowed(region, "ITI-41")


def test_unknown_peer_gets_the_default(rules: AccessRules) -> None:
    stranger = _peer("lab")
    assert not rules.allowed(stranger, "ITI-18")
    allowing = AccessRules.load({"access": {"default": "allow"}})
    assert allowing.allowed(stranger, "ITI-42")


def test_anonymous_callers() -> None:
    assert not AccessRules.load({"access": {}}).allowed(None, "ITI-18")
    rules = AccessRules.load({"access": {"anonymous": ["ITI-18"]}})
    assert rules.allowed(None, "ITI-18") and not rules.allowed(None, "ITI-41")
    assert AccessRules.allow_all().allowed(None, "ITI-42")
    assert AccessRules.allow_all().allowed(_peer("x"), "C-STORE")


def test_wildcards() -> None:
    rules = AccessRules.load(
        {
            "rule": [
                {"subject": "*", "transactions": ["ITI-18"]},
                {"san": "DNS:x", "transactions": "*"},
            ]
        }
    )
    assert rules.allowed(_peer("anyone"), "ITI-18")
    assert not rules.allowed(_peer("anyone"), "ITI-43")
    assert rules.allowed(_peer("x", "DNS:x"), "ITI-42")


def test_cross_community_transactions_have_their_own_names() -> None:
    rules = AccessRules.load(
        {"rule": [{"subject": f"CN=hie-b,O={ORG}", "transactions": ["ITI-38", "ITI-39", "RAD-75"]}]}
    )
    assert all(rules.allowed(_peer("hie-b"), t) for t in ("ITI-38", "ITI-39", "RAD-75"))
    assert not rules.allowed(_peer("hie-b"), "ITI-18")


def test_rad68_is_iti41() -> None:
    assert canonical_transaction("rad-68") == "ITI-41"
    rules = AccessRules.load({"rule": [{"subject": f"CN=s,O={ORG}", "transactions": ["RAD-68"]}]})
    assert rules.allowed(_peer("s"), "ITI-41")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"rule": [{"subject": "CN=a", "transactions": ["ITI-99"]}]}, "unknown transaction ITI-99"),
        ({"rule": [{"subject": "CN=a"}]}, "'transactions' is required"),
        ({"rule": [{"transactions": ["ITI-18"]}]}, "give 'subject' or 'san'"),
        ({"rule": [{"subject": "CN=a", "transactions": [], "extra": 1}]}, "unknown key"),
        ({"rule": [{"san": "host", "transactions": []}]}, "expected DNS:"),
        ({"rule": [{"subject": "nonsense", "transactions": []}]}, "not a distinguished name"),
        ({"default": "maybe"}, "access.default"),
        ({"colour": "blue"}, "access.colour"),
        ({"rule": {"subject": "CN=a"}}, "access.rule"),
    ],
)
def test_configuration_errors(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AccessRules.load({"access": table})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        AccessRules.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[access\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        AccessRules.load(bad)
