"""gateway.imaging.negotiation: the transfer syntax accepted per presentation context (the
sender's first supported one, or the operator's order), and the setting's parsing.
Standard: PS3.8 §7.1.1.13-14, PS3.7 §D.3.2."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.imaging.negotiation import SyntaxChooser, parse_preference
from gateway.imaging.net import negotiation as net_negotiation
from gateway.imaging.net import pdu
from gateway.imaging.source import ImagingSource
from gateway.imaging.storescp import ACCEPTED_TRANSFER_SYNTAXES
from tests.unit.imaging.support import RecordingRepository
from tests.unit.imaging.test_imaging_net import POLICY, request_bytes

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
SV1 = "1.2.840.10008.1.2.4.70"
JLS = "1.2.840.10008.1.2.4.80"
PRIVATE = "1.2.3.4.5.6"
SUPPORTED = {CT: frozenset({EXPLICIT, IMPLICIT, SV1, JLS})}


def test_the_sender_order_wins_by_default() -> None:
    chooser = SyntaxChooser(SUPPORTED)
    assert chooser.choose(CT, [SV1, EXPLICIT, IMPLICIT]) == SV1
    assert chooser.choose(CT, [PRIVATE, JLS, EXPLICIT]) == JLS  # first one supported
    assert chooser.choose(CT, [EXPLICIT, SV1]) == EXPLICIT
    assert chooser.choose(CT, [PRIVATE]) is None
    assert chooser.choose("1.2.840.10008.5.1.4.1.1.999", [EXPLICIT]) is None


def test_the_operator_order_wins_when_given_and_never_refuses_more() -> None:
    chooser = SyntaxChooser(SUPPORTED, (IMPLICIT, EXPLICIT))
    assert chooser.choose(CT, [SV1, EXPLICIT, IMPLICIT]) == IMPLICIT
    assert chooser.choose(CT, [SV1, EXPLICIT]) == EXPLICIT
    assert chooser.choose(CT, [JLS, SV1]) == JLS  # nothing listed proposed: the sender's first


def test_each_context_gets_its_own_choice() -> None:
    """Two contexts of one SOP class in different orders each get their own first syntax."""
    request = pdu.parse_associate_rq(
        request_bytes([(1, CT, [SV1, EXPLICIT]), (3, CT, [EXPLICIT, SV1]), (5, CT, [PRIVATE])])[6:]
    )
    policy = dataclasses.replace(POLICY, choose=SyntaxChooser(SUPPORTED).choose)
    accepted = net_negotiation.accept(request, policy).contexts
    assert {cid: c.transfer_syntax for cid, c in accepted.items()} == {1: SV1, 3: EXPLICIT}


def test_preference_setting() -> None:
    assert parse_preference("sender", ACCEPTED_TRANSFER_SYNTAXES) == ()
    assert parse_preference(" Sender ", ACCEPTED_TRANSFER_SYNTAXES) == ()
    assert parse_preference(f"{IMPLICIT}, {EXPLICIT},{IMPLICIT}", ACCEPTED_TRANSFER_SYNTAXES) == (
        IMPLICIT,
        EXPLICIT,
    )
    with pytest.raises(ValueError, match=re.escape(PRIVATE)):
        parse_preference(f"{EXPLICIT},{PRIVATE}", ACCEPTED_TRANSFER_SYNTAXES)
    with pytest.raises(ValueError, match="expected"):
        parse_preference(",", ACCEPTED_TRANSFER_SYNTAXES)


def test_bad_preferences_stop_start_up(tmp_path: Path) -> None:
    env = {"XDSI_GATEWAY_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="transfer_syntax_preference"):
        load_settings(None, environ={**env, "XDSI_IMAGING_SOURCE_TRANSFER_SYNTAX_PREFERENCE": "x"})
    settings = load_settings(
        None, environ={**env, "XDSI_IMAGING_SOURCE_TRANSFER_SYNTAX_PREFERENCE": PRIVATE}
    )
    with pytest.raises(ConfigError, match="not a transfer syntax the DICOM listener accepts"):
        ImagingSource.from_settings(settings, repository=RecordingRepository().client())
    settings = load_settings(
        None, environ={**env, "XDSI_IMAGING_SOURCE_TRANSFER_SYNTAX_PREFERENCE": EXPLICIT}
    )
    source = ImagingSource.from_settings(settings, repository=RecordingRepository().client())
    assert source.scp.chooser.order == (EXPLICIT,)


def test_association_limit_comes_from_the_settings(tmp_path: Path) -> None:
    env = {"XDSI_GATEWAY_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="max_associations"):
        load_settings(None, environ={**env, "XDSI_IMAGING_SOURCE_MAX_ASSOCIATIONS": "0"})
    settings = load_settings(None, environ={**env, "XDSI_IMAGING_SOURCE_MAX_ASSOCIATIONS": "3"})
    source = ImagingSource.from_settings(settings, repository=RecordingRepository().client())
    assert source.scp.max_associations == 3
