"""Fetch a patient's imaging studies: ITI-18 for the manifests, ITI-43 for them, RAD-69 for the
instances they list (the Imaging Document Consumer of XDS-I.b, RAD TF-1 §18.1, RAD TF-2/3).

1. ITI-18 FindDocuments for the patient, Approved, formatCode = KOS (1.2.840.10008.5.1.4.1.1.88.59,
   scheme 1.2.840.10008.2.6.1, RAD TF-3 §4.68.4.1.2.3.2); ``--modality`` adds an eventCodeList
   code, ``--since`` serviceStartTimeFrom. ``--study``/``--accession`` are matched on the
   entries' referenceIdList (ITI TF-3 §4.2.3.2.28) and again on the manifests themselves.
2. ITI-43 for the manifests, one request per repository (ITI TF-2 §3.43).
3. Per study: instances already at the destination are skipped; the destination says which of
   the requested transfer syntaxes it takes for each SOP Class (a PACS by association
   negotiation, ``gateway.consumer.syntax_plan``); the others are grouped by Retrieve Location
   UID and those syntaxes and requested by RAD-69 in batches, several requests in flight at once
   (bounded by ``parallel_requests``). An instance that does not come back, or comes back
   unreadable, is asked for again up to ``retries`` times, then reported missing; one that
   cannot be delivered in a syntax the destination takes is reported at once, saying why.

With ``via="wado-rs"`` (``fetch-study --via wado-rs``, the XDS-I.b WADO-RS option, RAD TF-2
§4.107) step 3 asks the DICOMweb service named by each series' Retrieve URL (0008,1190) in the
manifest instead (``gateway.consumer.wado``); batches, retries, checks and destinations are the
same.

Workers only talk to the network; checking, storing and counting happen in the calling thread,
so destinations need no locking and the progress bar is drawn from one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Protocol, TextIO, TypeVar

from gateway.consumer.clients import (
    ImagingSourceClient,
    RegistryQueryClient,
    RepositoryRetrieveClient,
)
from gateway.consumer.errors import ConsumerError, ManifestError, PeerError
from gateway.consumer.manifest import (
    InstanceRef,
    Manifest,
    by_location_uid,
    merge_instances,
    plan_batches,
    read_manifest,
)
from gateway.consumer.queries import KOS_FORMAT_CODE, QueryOptions, build_slots, modality_code
from gateway.consumer.report import (
    FetchReport,
    FetchRequest,
    StudyOutcome,
    by_study,
    entry_matches,
    manifest_matches,
    match_documents,
    nothing_found,
)
from gateway.consumer.settings import ConsumerSettings
from gateway.consumer.store import Destination, PermanentProblem
from gateway.consumer.syntax_plan import SyntaxPlan
from gateway.consumer.wado import WadoRsSource, service_root
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import (
    DocumentRequest,
    ImagingDocumentRequest,
    RetrieveDocumentSetResponse,
)
from gateway.progress import Progress, short_uid

log = logging.getLogger("gateway.consumer")

VIAS = ("rad-69", "wado-rs")
_ClientT = TypeVar("_ClientT", RegistryQueryClient, RepositoryRetrieveClient, ImagingSourceClient)
_T = TypeVar("_T")


class ImagingSource(Protocol):
    """What the fetch needs of an imaging document source (:class:`ImagingSourceClient`)."""

    def retrieve(
        self, refs: Sequence[ImagingDocumentRequest], transfer_syntaxes: Sequence[str]
    ) -> RetrieveDocumentSetResponse: ...


class StudyFetcher:
    """Runs fetches against the peers ``settings`` names, into one destination."""

    def __init__(
        self,
        settings: ConsumerSettings,
        destination: Destination,
        *,
        progress: TextIO | None = None,
        live: bool | None = None,
        retry_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        source_factory: Callable[[str], ImagingSource] | None = None,
        via: str = "rad-69",
    ) -> None:
        if via not in VIAS:
            raise ValueError(f"via must be one of {', '.join(VIAS)}, got {via!r}")
        self.settings = settings
        self.destination = destination
        self.progress_stream = progress
        self.live = live
        self.retry_delay = retry_delay
        self.sleep = sleep
        self._sources: dict[str, ImagingSource] = {}
        self.via = via
        default = self._wado_source if via == "wado-rs" else self._soap_source
        self._source_factory = source_factory or default
        # a failure that running the fetch again may overcome (FetchReport.transient_failure)
        self._transient_failure = False

    def _connect(self, cls: type[_ClientT], url: str) -> _ClientT:
        """A client of ``cls`` for ``url`` with the settings' timeout and TLS; MTOM parts are
        spooled next to the destination (saving them is then a rename)."""
        s = self.settings
        return cls(
            url,
            timeout=s.timeout,
            verify=s.verify,
            cert=s.cert,
            spool_dir=self.destination.spool_dir,
        )

    # -- manifests ------------------------------------------------------------------------------
    def find_manifests(self, request: FetchRequest) -> list[DocumentEntry]:
        """ITI-18 FindDocuments for the patient's approved KOS manifests.

        Standard: ITI TF-2 §3.18.4.1.2.3.7.1; RAD TF-3 §4.68.4.1.2.3.2 (formatCode, eventCodeList).
        Raises: RequestFailed, PeerError, UnknownEndpoint.
        """
        options = QueryOptions(
            query="FindDocuments",
            patient_id=request.patient_id,
            format_codes=[KOS_FORMAT_CODE],
            event_codes=[modality_code(request.modality)] if request.modality else [],
            time_from=request.since,
        )
        query_id, slots = build_slots(options)
        client = self._connect(RegistryQueryClient, self.settings.require_registry())
        try:
            result = self._retrying("ITI-18", lambda: client.query(query_id, slots))
        finally:
            client.close()
        for error in result.errors:
            log.warning("ITI-18 %s", error)
        entries = [obj for obj in result.objects if isinstance(obj, DocumentEntry)]
        return [entry for entry in entries if entry_matches(entry, request)]

    def retrieve_manifests(
        self, entries: Sequence[DocumentEntry], problems: list[str]
    ) -> list[Manifest]:
        """ITI-43 for the manifests, one request per repository; unreadable or unavailable
        manifests are added to ``problems``. Standard: ITI TF-2 §3.43.4."""
        by_repository: dict[tuple[str, str | None], list[DocumentEntry]] = {}
        for entry in entries:
            # another community's documents are asked of the Initiating Gateway (XCA)
            home = (
                entry.home_community_id
                if self.settings.via_gateway(entry.home_community_id)
                else None
            )
            by_repository.setdefault((entry.repository_unique_id or "", home), []).append(entry)
        manifests: list[Manifest] = []
        for (repository_id, home), members in by_repository.items():
            try:
                url = self.settings.document_url(repository_id, home)
                client = self._connect(RepositoryRetrieveClient, url)
                refs = [_document_ref(entry, repository_id) for entry in members]
                try:
                    result = self._retrying("ITI-43", partial(client.retrieve, refs))
                finally:
                    client.close()
            except ConsumerError as exc:
                problems.append(f"manifests of repository {repository_id or '?'}: {exc}")
                continue
            manifests.extend(self._read_manifests(members, result, problems))
        return manifests

    def _retrying(self, what: str, request: Callable[[], _T]) -> _T:
        """Run ``request``; after a transient failure (no complete answer) run it again, up to
        ``retries`` more times with the same back-off as RAD-69 batches."""
        for attempt in range(self.settings.retries):
            try:
                return request()
            except PeerError as exc:
                if not exc.transient:
                    raise
                log.warning("%s failed, asking again: %s", what, exc)
                self.sleep(self._backoff(attempt + 1))
        try:
            return request()
        except PeerError as exc:
            self._transient_failure = self._transient_failure or exc.transient
            raise

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 = the first repetition)."""
        return min(self.retry_delay * 2 ** (attempt - 1), 5.0)

    @staticmethod
    def _read_manifests(
        entries: Sequence[DocumentEntry], result: RetrieveDocumentSetResponse, problems: list[str]
    ) -> list[Manifest]:
        by_uid = {document.document_unique_id: document for document in result.documents}
        manifests = []
        try:
            for entry in entries:
                document = by_uid.get(entry.unique_id or "")
                if document is None:
                    errors = "; ".join(str(e) for e in result.errors) or result.status.short
                    problems.append(f"manifest {entry.unique_id} not retrieved ({errors})")
                    continue
                try:
                    manifest = read_manifest(document.attachment.read_bytes())
                    manifests.append(manifest.from_community(entry.home_community_id))
                except ManifestError as exc:
                    problems.append(f"manifest {entry.unique_id}: {exc}")
        finally:
            result.discard()
        return manifests

    # -- the whole command ----------------------------------------------------------------------
    def run(self, request: FetchRequest) -> FetchReport:
        """Find, retrieve and fetch every matching study; never raises for a peer's failure
        (it is in the report), only KeyboardInterrupt passes (with the report marked)."""
        report = FetchReport()
        try:
            entries = self.find_manifests(request)
            manifests = [
                m
                for m in self.retrieve_manifests(entries, report.problems)
                if manifest_matches(m, request)
            ]
            if not manifests and not report.problems:
                report.problems.append(nothing_found(request))
            for study_uid, members in by_study(manifests).items():
                report.studies.append(self.fetch_study(request, study_uid, members))
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        except ConsumerError as exc:
            report.problems.append(str(exc))
        finally:
            report.transient_failure = self._transient_failure
            report.notes.extend(self.close())
        return report

    def close(self) -> list[str]:
        """Finish the destination and close the retrieve sources; the destination's notes.
        :meth:`run` does it at its end; a caller of :meth:`fetch_study` does it itself."""
        notes = self.destination.finish()
        for source in self._sources.values():
            close = getattr(source, "close", None)
            if close is not None:
                close()
        return notes

    # -- one study ------------------------------------------------------------------------------
    def fetch_study(
        self, request: FetchRequest, study_uid: str, manifests: Sequence[Manifest]
    ) -> StudyOutcome:
        """Fetch every instance the study's manifests list that the destination lacks."""
        started = time.monotonic()
        refs = merge_instances(manifests)
        outcome = StudyOutcome(
            study_instance_uid=study_uid,
            manifests=[m.sop_instance_uid for m in manifests],
            total=len(refs),
        )
        progress = Progress(
            f"study {short_uid(study_uid)}",
            len(refs),
            unit="instances",
            stream=self.progress_stream,
            live=self.live,
            width=20,
        )
        present = self.destination.existing(request.patient_id, refs)
        outcome.present = len(present)
        progress.advance(len(present))
        unreachable: dict[str, str] = {}
        todo = self._reachable([r for r in refs if r.sop_instance_uid not in present], unreachable)
        plan, todo = self._plan(request, todo, unreachable, outcome)
        failures: dict[str, str] = {}
        try:
            for attempt in range(self.settings.retries + 1):
                if not todo:
                    break
                if attempt:
                    self.sleep(self._backoff(attempt))
                failures = self._round(request, plan, todo, outcome, progress)
                todo = [
                    ref
                    for ref in todo
                    if ref.sop_instance_uid in failures
                    and ref.sop_instance_uid not in outcome.unfixable
                ]
        finally:
            outcome.missing = {**unreachable, **failures}
            progress.advance(len(outcome.missing))
            progress.close()
            outcome.seconds = time.monotonic() - started
        return outcome

    def _locate(self, ref: InstanceRef) -> str | None:
        """Where the instance is asked for: its Retrieve Location UID (RAD-69) or the service
        root of its Retrieve URL (WADO-RS)."""
        if self.via == "wado-rs":
            return service_root(ref.retrieve_url) if ref.retrieve_url else None
        return by_location_uid(ref)

    def _reachable(self, refs: list[InstanceRef], unreachable: dict[str, str]) -> list[InstanceRef]:
        """Instances that can be requested; the others go to ``unreachable`` with the reason."""
        reachable = []
        for ref in refs:
            location = self._locate(ref)
            if not location:
                unreachable[ref.sop_instance_uid] = (
                    "the manifest names no Retrieve URL (0008,1190) for WADO-RS: the imaging "
                    "source does not offer the WADO-RS option (fetch without --via wado-rs)"
                    if self.via == "wado-rs"
                    else "the manifest names no Retrieve Location UID"
                )
                continue
            try:
                self._source(location, ref.home_community_id)
            except ConsumerError as exc:
                unreachable[ref.sop_instance_uid] = str(exc)
                continue
            reachable.append(ref)
        return reachable

    def _plan(
        self,
        request: FetchRequest,
        refs: list[InstanceRef],
        unreachable: dict[str, str],
        outcome: StudyOutcome,
    ) -> tuple[SyntaxPlan, list[InstanceRef]]:
        """The transfer syntaxes the destination takes per SOP Class of ``refs``, and the
        instances that can be asked for in one of them; the others go to ``unreachable``."""
        where = self.destination.describe()
        requested = request.transfer_syntaxes
        if not refs:
            return SyntaxPlan.anything(requested), refs
        classes = list(dict.fromkeys(ref.sop_class_uid for ref in refs))
        try:
            by_class = self.destination.transfer_syntaxes(classes, requested)
        except ConsumerError as exc:
            unreachable.update(dict.fromkeys((ref.sop_instance_uid for ref in refs), str(exc)))
            return SyntaxPlan.anything(requested), []
        plan = SyntaxPlan(requested=requested, by_class=by_class, where=where)
        deliverable = []
        for ref in refs:
            refusal = plan.refusal(ref)
            if refusal is None:
                deliverable.append(ref)
                continue
            unreachable[ref.sop_instance_uid] = refusal
            outcome.unfixable.add(ref.sop_instance_uid)
        return plan, deliverable

    def _soap_source(self, url: str) -> ImagingSource:
        return self._connect(ImagingSourceClient, url)

    def _wado_source(self, root: str) -> ImagingSource:
        s = self.settings
        return WadoRsSource(
            root,
            spool_dir=self.destination.spool_dir,
            timeout=s.timeout,
            verify=s.verify,
            cert=s.cert,
        )

    def _source(self, location: str, home: str | None = None) -> ImagingSource:
        """The client for ``location`` (see :meth:`_locate`): by WADO-RS the Retrieve URL's
        service root itself; by RAD-69 the imaging source of that Retrieve Location UID, or the
        Initiating Imaging Gateway for another community's (``home``)."""
        wado = self.via == "wado-rs"
        url = location if wado else self.settings.instance_url(location, home)
        client = self._sources.get(url)
        if client is None:
            client = self._source_factory(url)
            self._sources[url] = client
        return client

    def _round(
        self,
        request: FetchRequest,
        plan: SyntaxPlan,
        todo: Sequence[InstanceRef],
        outcome: StudyOutcome,
        progress: Progress,
    ) -> dict[str, str]:
        """One pass of RAD-69 requests over ``todo``; return the reason per instance not kept."""
        failures: dict[str, str] = {}
        by_syntaxes: dict[tuple[str, ...], list[InstanceRef]] = {}
        for ref in todo:
            by_syntaxes.setdefault(plan.syntaxes(ref), []).append(ref)
        pool = ThreadPoolExecutor(max_workers=self.settings.parallel_requests)
        pending: dict[Future[RetrieveDocumentSetResponse], list[InstanceRef]] = {}
        try:
            for syntaxes, refs in by_syntaxes.items():
                for location, batch in plan_batches(refs, self.settings.batch_size, self._locate):
                    client = self._source(location, batch[0].home_community_id)
                    requested = [ref.imaging_request(ref.home_community_id) for ref in batch]
                    future = pool.submit(client.retrieve, requested, syntaxes)
                    pending[future] = batch
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = pending.pop(future)
                    outcome.requests += 1
                    found = self._settle(request, batch, future, outcome, progress)
                    if future.exception() is None:  # the source answered: was it the syntax?
                        outcome.unfixable |= plan.reword(batch, future.result().errors, found)
                    failures.update(found)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for future in pending:
                if future.done() and not future.cancelled() and future.exception() is None:
                    future.result().discard()
        return failures

    def _settle(
        self,
        request: FetchRequest,
        batch: Sequence[InstanceRef],
        future: Future[RetrieveDocumentSetResponse],
        outcome: StudyOutcome,
        progress: Progress,
    ) -> dict[str, str]:
        """Store what a RAD-69 answer brought; return the reason per instance of the batch
        that is not stored."""
        try:
            result = future.result()
        except PeerError as exc:
            self._transient_failure = self._transient_failure or exc.transient
            return {ref.sop_instance_uid: str(exc) for ref in batch}
        items, reasons = match_documents(batch, result)
        problems = self.destination.store(request.patient_id, items)
        reasons.update(problems)
        outcome.unfixable.update(u for u, r in problems.items() if isinstance(r, PermanentProblem))
        stored = [(ref, a.size) for ref, a in items if ref.sop_instance_uid not in problems]
        size = sum(s for _, s in stored)
        outcome.fetched += len(stored)
        outcome.bytes += size
        progress.advance(len(stored), size)
        return reasons


def _document_ref(entry: DocumentEntry, repository_id: str) -> DocumentRequest:
    return DocumentRequest(
        repository_unique_id=repository_id,
        document_unique_id=entry.unique_id or "",
        home_community_id=entry.home_community_id,
    )
