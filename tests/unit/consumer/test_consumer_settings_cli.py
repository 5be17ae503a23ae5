"""Consumer settings (own actors, configuration, options) and the command-line glue."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from gateway.config import load_settings
from gateway.consumer import cli, syntaxes
from gateway.consumer.errors import UnknownEndpoint
from gateway.consumer.fetch import FetchReport, StudyOutcome
from gateway.consumer.pacs import parse_store_target
from gateway.consumer.settings import ConsumerSettings, consumer_settings
from gateway.consumer.table import pretty_dtm, render_json, render_table
from gateway.metadata.datatypes import Code
from gateway.metadata.model import Association, DocumentEntry, SubmissionSet


def settings(**env: str):  # type: ignore[no-untyped-def]
    return load_settings(environ={"XDSI_HTTP_PORT": "18080", **env})


def test_the_gateways_own_actors_need_no_configuration() -> None:
    consumer = consumer_settings(settings())
    assert consumer.registry_url == "http://127.0.0.1:18080/xds/registry"
    assert consumer.repository_url("1.3.6.1.4.1.21367.13.40.100").endswith("/xds/repository")
    assert consumer.imaging_source_url("1.3.6.1.4.1.21367.13.80.100").endswith("/xdsi/source")
    with pytest.raises(UnknownEndpoint, match=r"\[consumer.imaging_sources\]"):
        consumer.imaging_source_url("9.9")
    with pytest.raises(UnknownEndpoint, match=r"\[consumer.repositories\]"):
        consumer.repository_url("9.9")


def test_disabled_actors_are_not_listed_and_options_win() -> None:
    base = settings(XDSI_REGISTRY_ENABLED="false", XDSI_REPOSITORY_ENABLED="false")
    consumer = consumer_settings(
        base, imaging_sources={"9.9": "http://a/xdsi/source"}, retries=None
    )
    assert consumer.registry_url == "" and dict(consumer.repositories) == {}
    assert set(consumer.imaging_sources) == {"1.3.6.1.4.1.21367.13.80.100", "9.9"}
    assert consumer.retries == 3
    with pytest.raises(UnknownEndpoint, match="registry"):
        consumer.require_registry()
    url = consumer_settings(base, registry_url="https://r/xds/registry").require_registry()
    assert url == "https://r/xds/registry"


def test_a_consumer_section_in_the_configuration_is_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        '[consumer]\nregistry_url = "http://region/xds/registry"\nparallel_requests = 8\n'
        "batch_size = 10\ntimeout = 30\nretries = 1\n"
        '[consumer.repositories]\n"5.5" = "http://region/r"\n'
    )
    base = load_settings(cfg, environ={"XDSI_HTTP_PORT": "18080"})
    consumer = consumer_settings(base, batch_size=20)
    assert consumer.registry_url == "http://region/xds/registry"
    assert consumer.repository_url("5.5") == "http://region/r"
    assert (consumer.parallel_requests, consumer.batch_size, consumer.retries) == (8, 20, 1)
    with pytest.raises(ValueError):
        ConsumerSettings(batch_size=0)


def test_tls_gives_https_and_the_node_identity(tmp_path) -> None:  # type: ignore[no-untyped-def]
    consumer = consumer_settings(
        settings(
            XDSI_GATEWAY_DATA_DIR=str(tmp_path),
            XDSI_TLS_CA_FILE="ca.pem",
            XDSI_TLS_CERTIFICATE="node.pem",
            XDSI_TLS_PRIVATE_KEY="node.key",
        )
    )
    assert consumer.registry_url.startswith("http://")  # TLS off: plain, no identity
    assert consumer.cert is None
    import dataclasses

    from gateway.config import TlsSettings

    base = settings(XDSI_GATEWAY_DATA_DIR=str(tmp_path))
    secure = dataclasses.replace(
        base,
        tls=TlsSettings(enabled=True, ca_file="ca.pem", certificate="n.pem", private_key="n.key"),
    )
    consumer = consumer_settings(secure)
    assert consumer.registry_url == "https://127.0.0.1:18080/xds/registry"
    assert consumer.verify == str(tmp_path / "ca.pem")
    assert consumer.cert == (str(tmp_path / "n.pem"), str(tmp_path / "n.key"))


def test_transfer_syntax_option() -> None:
    assert syntaxes.parse_transfer_syntaxes(["all"]) == syntaxes.ALL
    assert syntaxes.parse_transfer_syntaxes(
        ["ExplicitVRLittleEndian,1.2.840.10008.1.2", "native"]
    ) == (
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.2",
    )
    for bad in (["nonsense"], ["1.2.x"], [""]):
        with pytest.raises(ValueError):
            syntaxes.parse_transfer_syntaxes(bad)


def test_store_target_option() -> None:
    target = parse_store_target("ORTHANC@127.0.0.1:4242")
    assert (target.ae_title, target.host, target.port, str(target)) == (
        "ORTHANC",
        "127.0.0.1",
        4242,
        "ORTHANC@127.0.0.1:4242",
    )
    assert parse_store_target("PACS@[::1]:104").host == "::1"
    for bad in ("PACS", "PACS@host", "PACS@host:0", "WAY_TOO_LONG_AE_TITLE@h:1"):
        with pytest.raises(ValueError):
            parse_store_target(bad)


def parse(command: str, *argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args([command, *argv])


def test_fetch_arguments() -> None:
    args = parse(
        "fetch-study",
        "--patient",
        "P^^^&1.2&ISO",
        "--out",
        "d",
        "--imaging-source",
        "1.2=http://a/xdsi/source",
        "--parallel",
        "2",
        "--transfer-syntax",
        "native",
    )
    consumer = cli.settings_from_args(args, settings())
    assert (
        consumer.parallel_requests == 2
        and consumer.imaging_source_url("1.2") == "http://a/xdsi/source"
    )
    with pytest.raises(SystemExit):
        parse("fetch-study", "--patient", "P", "--out", "d", "--store-to", "A@h:1")
    with pytest.raises(SystemExit):
        parse("fetch-study", "--patient", "P")


def test_fetch_refuses_bad_options_with_exit_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = io.StringIO()
    cx = "P^^^&1.2&ISO"
    args = parse("fetch-study", "--patient", cx, "--store-to", "nonsense")
    assert cli.run_fetch(args, settings(), err=err) == cli.EXIT_USAGE
    assert "AET@host:port" in err.getvalue()
    args = parse("fetch-study", "--patient", cx, "--out", str(tmp_path), "--transfer-syntax", "x")
    assert cli.run_fetch(args, settings(), err=err) == cli.EXIT_USAGE
    err = io.StringIO()
    args = parse("fetch-study", "--patient", "P", "--out", str(tmp_path))
    assert cli.run_fetch(args, settings(), err=err) == cli.EXIT_USAGE  # no CX: asks nobody
    assert "--patient 'P'" in err.getvalue() and "ID^^^&OID&ISO" in err.getvalue()


def test_query_refuses_bad_options_with_exit_2() -> None:
    err = io.StringIO()
    args = parse("query", "--query", "GetDocuments", "--patient", "P^^^&1.2&ISO")
    assert cli.run_query(args, settings(), err=err) == cli.EXIT_USAGE
    assert "--patient does not apply" in err.getvalue()
    args = parse("query", "--patient", "P^^^&1.2&ISO", "--param", "NoDollar=1")
    assert cli.run_query(args, settings(), err=err) == cli.EXIT_USAGE
    args = parse("query", "--patient", "P")  # no CX: refused before any request
    assert cli.run_query(args, settings(), err=err) == cli.EXIT_USAGE
    assert "has no assigning authority" in err.getvalue()


def test_query_options_from_arguments() -> None:
    args = parse(
        "query",
        "--patient",
        "P",
        "--kos",
        "--modality",
        "MR",
        "--class-code",
        "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1",
        "--status",
        "all",
        "--from",
        "2024-01-01",
    )
    options = cli.query_options(args)
    assert options.format_codes[0].code == "1.2.840.10008.5.1.4.1.1.88.59"
    assert options.event_codes == [Code("MR", "1.2.840.10008.2.16.4")]
    assert options.class_codes == [Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1")]
    assert options.statuses == ["all"] and options.time_from == "2024-01-01"


def test_summary_lists_what_is_missing() -> None:
    out = io.StringIO()
    study = StudyOutcome(study_instance_uid="1.2", total=3, present=1, fetched=1, requests=1)
    study.missing = {"1.2.3": "not returned (Failure)"}
    cli.print_summary(FetchReport(studies=[study]), "/tmp/x", out)
    text = out.getvalue()
    assert "1 already present, 1 fetched" in text
    assert "missing 1.2.3: not returned (Failure)" in text
    assert "INCOMPLETE: 1 instance(s) missing" in text
    assert "run the same command again to retry" in text
    out = io.StringIO()
    study.unfixable = {"1.2.3"}  # e.g. the PACS takes its SOP Class in no deliverable syntax
    cli.print_summary(FetchReport(studies=[study]), "/tmp/x", out)
    assert "INCOMPLETE: 1 instance(s) missing, 0 problem(s)\n" in out.getvalue()
    assert "retry" not in out.getvalue()
    out = io.StringIO()
    study.missing = {}
    cli.print_summary(FetchReport(studies=[study]), "/tmp/x", out)
    assert "complete: 2 instance(s) of 1 study(ies) in /tmp/x" in out.getvalue()
    assert not FetchReport().complete


def test_table_and_json() -> None:
    entry = DocumentEntry(
        entry_uuid="urn:uuid:1",
        title="CT chest",
        service_start_time="20240102101500",
        event_code_list=[
            Code("CT", "1.2.840.10008.2.16.4"),
            Code("43799004", "2.16.840.1.113883.6.96"),
        ],
        reference_id_list=["1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID"],
        availability_status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        unique_id="1.2.3.99",
    )
    others = [
        SubmissionSet(entry_uuid="urn:uuid:2", unique_id="5.5", submission_time="20240102"),
        Association(
            entry_uuid="urn:uuid:3",
            association_type="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
            source_object="urn:uuid:2",
            target_object="urn:uuid:1",
        ),
    ]
    table = render_table([entry, *others])
    header, row = table.splitlines()[:2]
    assert header.split() == [
        "TITLE",
        "DATE",
        "MODALITY",
        "STUDY",
        "INSTANCE",
        "UID",
        "STATUS",
        "DOCUMENT",
        "UNIQUE",
        "ID",
    ]
    assert row.split() == [
        "CT",
        "chest",
        "2024-01-02",
        "10:15",
        "CT",
        "1.2.3",
        "Approved",
        "1.2.3.99",
    ]
    assert "HasMember urn:uuid:2 -> urn:uuid:1" in table
    assert table.endswith("1 document(s), 2 other object(s)")
    assert render_table([]) == "no results"
    assert pretty_dtm("2024") == "2024" and pretty_dtm(None) == ""
    data = json.loads(render_json([entry], status="Success", errors=[]))
    assert data["objects"][0]["kind"] == "DocumentEntry"
    assert data["objects"][0]["event_code_list"][0]["code"] == "CT"
