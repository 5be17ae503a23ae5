"""The consumer through an Initiating Gateway (XCA, XCA-I): where each request goes, and the
community each result comes from."""

from __future__ import annotations

import argparse

from gateway.config import load_settings
from gateway.consumer import cli
from gateway.consumer.manifest import InstanceRef, Manifest
from gateway.consumer.settings import consumer_settings
from gateway.consumer.table import render_table
from gateway.metadata.model import DocumentEntry

HOME, OTHER = "urn:oid:1.2.3.1", "urn:oid:1.2.3.2"
XCA = {
    "XDSI_HTTP_PORT": "18080",
    "XDSI_XCA_ENABLED": "true",
    "XDSI_XCA_HOME_COMMUNITY_ID": HOME,
}


def test_with_xca_on_queries_go_to_the_own_initiating_gateway() -> None:
    consumer = consumer_settings(load_settings(environ=XCA))
    assert consumer.initiating_gateway_url == "http://127.0.0.1:18080/xca/ig"
    assert consumer.require_registry() == consumer.initiating_gateway_url
    assert consumer.home_community_id == HOME
    off = consumer_settings(load_settings(environ={"XDSI_HTTP_PORT": "18080"}))
    assert off.initiating_gateway_url == ""
    assert off.require_registry().endswith("/xds/registry")


def test_documents_of_another_community_go_through_the_gateway() -> None:
    consumer = consumer_settings(load_settings(environ=XCA))
    own_repository = "1.3.6.1.4.1.21367.13.40.100"
    assert consumer.via_gateway(OTHER) and not consumer.via_gateway(HOME)
    assert not consumer.via_gateway(None)
    assert consumer.document_url("9.9", OTHER) == consumer.initiating_gateway_url
    assert consumer.document_url(own_repository, HOME).endswith("/xds/repository")
    assert consumer.instance_url("9.9", OTHER) == consumer.initiating_gateway_url
    # without a gateway, a foreign home changes nothing (the repository is asked directly)
    plain = consumer_settings(load_settings(environ={"XDSI_HTTP_PORT": "18080"}))
    assert plain.document_url(own_repository, OTHER).endswith("/xds/repository")


def _args(**given: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_query_arguments(parser)
    argv = []
    for name, value in given.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


def test_a_registry_named_on_the_command_line_is_asked_directly() -> None:
    settings = load_settings(environ=XCA)
    direct = cli.settings_from_args(_args(registry="http://r/xds/registry"), settings)
    assert direct.require_registry() == "http://r/xds/registry"
    both = cli.settings_from_args(
        _args(registry="http://r/xds/registry", initiating_gateway="http://g/xca/ig"), settings
    )
    assert both.require_registry() == "http://g/xca/ig"


def test_the_table_names_the_community_when_the_answer_does() -> None:
    local = DocumentEntry(entry_uuid="urn:uuid:1", unique_id="1.1", home_community_id=HOME)
    remote = DocumentEntry(entry_uuid="urn:uuid:2", unique_id="2.2", home_community_id=OTHER)
    lines = render_table([local, remote]).splitlines()
    assert lines[0].rstrip().endswith("COMMUNITY")
    assert lines[2].rstrip().endswith(OTHER)
    assert "COMMUNITY" not in render_table([DocumentEntry(entry_uuid="urn:uuid:3")])


def test_a_manifest_from_a_community_marks_its_instances() -> None:
    ref = InstanceRef(
        study_instance_uid="1",
        series_instance_uid="1.1",
        sop_instance_uid="1.1.1",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        retrieve_location_uid="1.2.3.80",
    )
    manifest = Manifest(
        sop_instance_uid="9",
        study_instance_uid="1",
        patient_id="P",
        patient_name="",
        accession_numbers=(),
        instances=(ref,),
    )
    marked = manifest.from_community(OTHER)
    assert marked.instances[0].home_community_id == OTHER
    assert marked.instances[0].imaging_request(OTHER).document.home_community_id == OTHER
    assert manifest.from_community(None) is manifest
