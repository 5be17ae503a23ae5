"""What the NIST XCA-I plans need besides the runner: stand-in images, recording proxies in the
place of the toolkit's simulators, and the checks of their plug-in assertions.

- The toolkit's Imaging Document Source and Responding Imaging Gateway simulators hold the 2018
  reference images (``StdDir 2018/<test>``, not in the testkit). Our own synthetic instances
  stand in for them: they carry the study, series and SOP Instance UIDs the plans request (the
  values the checks compare), in Explicit VR Little Endian.
- ``sameReqImgs`` compares the request a simulator received (``SimTransaction id=``) with the
  plan's ``<Standard><RequestBody-X>``: a :class:`RecordingProxy` in front of each of our gateways
  playing a simulator records what the system under test sent it.
- ``sameRetImgs`` compares the response logged for ``<TestResponse>`` with ``<Standard>
  <ResponseBody>`` (status and each DocumentResponse's HomeCommunityId, RepositoryUniqueId,
  DocumentUniqueId, mimeType); ``registryErrorListNotEmpty`` wants a RegistryError in it;
  ``sameDcmImgs`` retrieves again and compares the ``<TagList>`` attributes of every returned
  image with the stand-in it was made from.
"""

from __future__ import annotations

import http.server
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import requests
from lxml import etree

from gateway.imaging import synthetic
from tests.conformance.nist import ns, retrieve, soap
from tests.conformance.nist.context import Location
from tests.conformance.nist.execution import StepExecution
from tests.conformance.nist.plan import load_test
from tests.conformance.nist.xmlutil import Element, copy, first, kids, local, text, walk


@dataclass(frozen=True, slots=True)
class Wanted:
    """One instance a plan requests: where it is and who holds it."""

    study: str
    series: str
    sop: str
    repository: str


def wanted_instances(testkit: Path, test_ids: tuple[str, ...]) -> list[Wanted]:
    """Every instance the retrieve steps of ``test_ids`` ask for (unknown ``...999`` ones
    excepted: the plans name them so that they are not found)."""
    found: dict[str, Wanted] = {}
    for test_id in test_ids:
        for section in load_test(testkit, test_id).sections:
            for step in section.steps:
                if step.instruction is None:
                    continue
                metadata = first(step.instruction, "MetadataFile")
                if metadata is None:
                    continue
                body = etree.parse(str(section.directory / text(metadata))).getroot()
                for item in _documents(body):
                    if not item.sop.endswith(".999") and not item.repository.endswith(".999"):
                        found.setdefault(item.sop, item)
    return list(found.values())


def _documents(body: Element) -> list[Wanted]:
    items = []
    for study in walk(body, "StudyRequest"):
        for series in walk(study, "SeriesRequest"):
            for request in walk(series, "DocumentRequest"):
                items.append(
                    Wanted(
                        study=study.get("studyInstanceUID", ""),
                        series=series.get("seriesInstanceUID", ""),
                        sop=text(first(request, "DocumentUniqueId")),
                        repository=text(first(request, "RepositoryUniqueId")),
                    )
                )
    return items


def standin(item: Wanted, number: int) -> pydicom.Dataset:
    """A synthetic CT instance with the UIDs the plan names."""
    spec = synthetic.StudySpec(
        patient_id=f"NIST-XCAI-{number}",
        study_uid=item.study,
        series=(synthetic.SeriesSpec(modality="CT", count=1),),
    )
    ds = synthetic.make_study(spec)[0]
    ds.SeriesInstanceUID = item.series
    ds.SOPInstanceUID = item.sop
    ds.file_meta.MediaStorageSOPInstanceUID = item.sop
    return ds


@dataclass
class RecordingProxy:
    """An HTTP proxy that records each SOAP request body (with its Content-Type) and passes it
    on to ``target`` (a base URL), answering with the target's answer."""

    target: str
    received: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, type, body
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                content_type = self.headers["Content-Type"]
                with proxy._lock:
                    proxy.received.append((self.path, content_type, body))
                answer = requests.post(
                    proxy.target + self.path,
                    data=body,
                    headers={"Content-Type": content_type},
                    timeout=60,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers["Content-Type"])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def requests(self) -> list[Element]:
        """The SOAP bodies received so far."""
        with self._lock:
            got = list(self.received)
        return [soap.parse_reply(200, kind, body).body for _, kind, body in got]  # type: ignore[misc]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _request_key(body: Element) -> tuple[frozenset[tuple[str, ...]], tuple[str, ...]]:
    documents = set()
    for study in walk(body, "StudyRequest"):
        for series in walk(study, "SeriesRequest"):
            for request in walk(series, "DocumentRequest"):
                documents.add(
                    (
                        study.get("studyInstanceUID", ""),
                        series.get("seriesInstanceUID", ""),
                        text(first(request, "HomeCommunityId")),
                        text(first(request, "RepositoryUniqueId")),
                        text(first(request, "DocumentUniqueId")),
                    )
                )
    syntaxes = tuple(text(s) for s in walk(body, "TransferSyntaxUID"))
    return frozenset(documents), syntaxes


def _response_key(body: Element) -> tuple[str, frozenset[tuple[str, ...]]]:
    registry = next(walk(body, "RegistryResponse"), None)
    status = (registry.get("status", "") if registry is not None else "").rsplit(":", 1)[-1]
    documents = frozenset(
        tuple(
            text(first(item, name))
            for name in ("HomeCommunityId", "RepositoryUniqueId", "DocumentUniqueId", "mimeType")
        )
        for item in walk(body, "DocumentResponse")
    )
    return status, documents


class PluginChecker:
    """The ``RunConfig.plugins`` of the XCA-I runs: checks every plug-in of an
    XmlDetailTransaction step, failing the step with what differs."""

    def __init__(
        self,
        *,
        proxies: dict[str, RecordingProxy],
        originals: dict[str, pydicom.Dataset],
        url: str,
        action: str,
    ) -> None:
        self.proxies, self.originals = proxies, originals
        self.url, self.action = url, action  # the system under test, for sameDcmImgs

    def __call__(self, ex: StepExecution) -> None:
        assert ex.step.instruction is not None
        standard = first(ex.step.instruction.getparent(), "Standard")
        for assertion in walk(ex.step.instruction, "Assert"):
            process = assertion.get("process", "")
            check = getattr(self, f"_{process}", None)
            if check is None:
                ex.fail(f"plug-in {process} is not checked here")
                continue
            for problem in check(ex, assertion, standard):
                ex.fail(f"{process}: {problem}")

    def _logged(self, ex: StepExecution, assertion: Element) -> tuple[Element, Element]:
        reference = next(walk(assertion, "TestResponse"))
        where = Location(
            test=ex.where.test,
            section=ex.where.section,
            section_dir=ex.section.directory,
            step="",
        )
        key = ex.ctx.resolve_testdir(where, reference.get("testDir", ""))
        log = ex.ctx.section_logs[key]
        [entry] = log.xpath("TestStep[@id=$s]/*", s=reference.get("step", ""))
        request = first(first(entry, "InputMetadata"), "RetrieveImagingDocumentSetRequest")
        result = next(walk(entry, "RetrieveDocumentSetResponse"))
        return request, result

    def _sameReqImgs(self, ex: StepExecution, assertion: Element, standard: Element) -> list[str]:
        simulator = first(assertion, "SimTransaction").get("id", "")
        [expected] = kids(first(standard, assertion.get("std", "")))
        received = self.proxies[simulator].requests()
        if len(received) != 1:
            return [f"{simulator} received {len(received)} requests, expected one"]
        if _request_key(received[0]) != _request_key(expected):
            return [f"{simulator} received {_request_key(received[0])}"]
        return []

    def _sameRetImgs(self, ex: StepExecution, assertion: Element, standard: Element) -> list[str]:
        _, result = self._logged(ex, assertion)
        [expected] = kids(first(standard, "ResponseBody"))
        got, wanted = _response_key(result), _response_key(expected)
        return [] if got == wanted else [f"response {got}, expected {wanted}"]

    def _registryErrorListNotEmpty(
        self, ex: StepExecution, assertion: Element, standard: Element
    ) -> list[str]:
        _, result = self._logged(ex, assertion)
        return [] if list(walk(result, "RegistryError")) else ["no RegistryError"]

    def _sameDcmImgs(self, ex: StepExecution, assertion: Element, standard: Element) -> list[str]:
        request, _ = self._logged(ex, assertion)
        tags = [local(t) for t in kids(next(walk(assertion, "TagList")))]
        reply = soap.send(
            soap.SoapRequest(url=self.url, action=self.action, body=copy(request), mtom=True),
            timeout=60,
        )
        assert reply.body is not None
        got = retrieve.retrieved_documents(reply.body, reply.parts)
        problems = [] if got else ["no image returned"]
        for uid, document in got.items():
            image = pydicom.dcmread(io.BytesIO(document.content or b""))
            original = self.originals[uid]
            for tag in tags:
                if str(image.get(tag, "")) != str(original.get(tag, "")):
                    problems.append(f"{uid}: {tag} {image.get(tag)} != {original.get(tag)}")
        return problems


RAD75_ACTION = ns.ACTION_RAD75
RAD69_ACTION = ns.ACTION_RAD69
