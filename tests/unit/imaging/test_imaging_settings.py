"""[imaging_source] settings become the manifest codes; the defaults are the documented ones."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config import ImagingSourceSettings, load_settings
from gateway.errors import ConfigError
from gateway.imaging.codes import ManifestCodes
from gateway.imaging.source import manifest_codes
from gateway.metadata.datatypes import Code


def test_default_settings_give_the_default_manifest_codes() -> None:
    assert manifest_codes(ImagingSourceSettings()) == ManifestCodes()


def test_configured_codes_are_used() -> None:
    section = dataclasses.replace(
        ImagingSourceSettings(), class_code="X^Ex^1.2.3", accession_issuer="1.2.9"
    )
    codes = manifest_codes(section)
    assert codes.class_code == Code("X", "1.2.3", "Ex")
    assert codes.accession_issuer == "1.2.9"


@pytest.mark.parametrize("value", ["IMAGES", "IMAGES^^", "^Images^1.2.3", "a^b^c^d"])
def test_malformed_code_stops_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match=r"imaging_source\.class_code"):
        load_settings(environ={"XDSI_IMAGING_SOURCE_CLASS_CODE": value})
