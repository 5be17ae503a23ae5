"""The consumer's WADO-RS client: the instances a KOS lists, by WADO-RS instead of RAD-69.

XDS-I.b WADO-RS option (WADO-RS Retrieve [RAD-107], RAD TF-2 §4.107): the manifest names, per
series, a Retrieve URL (0008,1190) (``gateway.consumer.manifest``); each instance is asked for
as the Instance resource below that series (PS3.18 §10.4.1.1.1,
``{series}/instances/{sop}``), ``Accept: multipart/related; type="application/dicom";
transfer-syntax=...`` with one media range per acceptable transfer syntax, in the consumer's
order of preference (PS3.18 §8.7.3.5; RFC 9110 §12.5.1 quality values).

The answer is read as it arrives into a file in ``spool_dir`` (the MIME reader of
``gateway.soap.mtom_reader``), so the destination's checks and its atomic rename are the same as
for RAD-69: the class answers like :class:`~gateway.consumer.clients.ImagingSourceClient`, one
:class:`RetrieveDocumentSetResponse` per batch, an error per instance not delivered (404: not
there; 406: not in an acceptable syntax; a broken connection: asked again by the fetch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import requests

from gateway import netcause
from gateway.errors import XDSDocumentUniqueIdError, XDSError, XDSRepositoryError
from gateway.metadata.retrieve import (
    DocumentResponse,
    ImagingDocumentRequest,
    RetrieveDocumentSetResponse,
)
from gateway.soap.message import Attachment
from gateway.soap.mime import MultipartError, parse_content_type
from gateway.soap.mtom_reader import iter_parts

DICOM = "application/dicom"
_SERIES_TAIL = re.compile(r"/studies/[0-9.]+(/series/[0-9.]+)?/?$")


def service_root(retrieve_url: str) -> str:
    """The DICOMweb service root of a Retrieve URL naming a study or series resource (or the
    root itself, as some manifests write it: IHE MADO Suppl. Appendix XA)."""
    return _SERIES_TAIL.sub("", retrieve_url.rstrip("/"))


def accept_header(transfer_syntaxes: Sequence[str]) -> str:
    """One ``application/dicom`` media range per syntax, best first (q from 1 down)."""
    ranges = []
    for index, syntax in enumerate(transfer_syntaxes):
        q = max(0.001, 1.0 - index * 0.001)
        ranges.append(f'multipart/related; type="{DICOM}"; transfer-syntax={syntax}; q={q:.3f}')
    return ", ".join(ranges)


class WadoRsSource:
    """Instances of one DICOMweb service root, asked for one by one on a kept-alive session."""

    def __init__(
        self,
        root: str,
        *,
        spool_dir: str | os.PathLike[str],
        timeout: float = 120.0,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.spool_dir = Path(spool_dir)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        if cert is not None:
            self.session.cert = cert

    def close(self) -> None:
        self.session.close()

    def retrieve(
        self, refs: Sequence[ImagingDocumentRequest], transfer_syntaxes: Sequence[str]
    ) -> RetrieveDocumentSetResponse:
        """Retrieve each instance; the answer holds those that came and an error per other.

        Standard: PS3.18 §10.4 (Retrieve Instance), RAD TF-2 §4.107.
        """
        documents: list[DocumentResponse] = []
        errors: list[XDSError] = []
        accept = accept_header(transfer_syntaxes)
        for ref in refs:
            uid = ref.document.document_unique_id
            try:
                attachment = self._one(ref, accept)
            except XDSError as error:
                errors.append(error)
                continue
            documents.append(
                DocumentResponse(
                    repository_unique_id=ref.document.repository_unique_id,
                    document_unique_id=uid,
                    mime_type=DICOM,
                    attachment=attachment,
                    home_community_id=ref.document.home_community_id,
                )
            )
        return RetrieveDocumentSetResponse.answer(documents, errors)

    def _one(self, ref: ImagingDocumentRequest, accept: str) -> Attachment:
        uid = ref.document.document_unique_id
        url = (
            f"{self.root}/studies/{ref.study_instance_uid}/series/"
            f"{ref.series_instance_uid}/instances/{uid}"
        )
        try:
            with self.session.get(
                url, headers={"Accept": accept}, stream=True, timeout=self.timeout
            ) as response:
                if response.status_code == 404:
                    raise XDSDocumentUniqueIdError(f"WADO-RS: {uid} is not at {url}", location=uid)
                if response.status_code != 200:
                    reason = response.text[:200].strip() if response.status_code < 500 else ""
                    raise XDSRepositoryError(
                        f"WADO-RS answered {response.status_code} for {uid}"
                        + (f": {reason}" if reason else ""),
                        location=uid,
                    )
                return self._read(response, uid)
        except requests.RequestException as exc:
            cause = netcause.explain(exc, url, peer="a DICOMweb service")
            raise XDSRepositoryError(f"WADO-RS: {cause}", location=uid) from exc

    def _read(self, response: requests.Response, uid: str) -> Attachment:
        """The one application/dicom part of the answer, in a spool file."""
        found: Attachment | None = None
        try:
            for part in iter_parts(
                response.raw,
                response.headers.get("Content-Type", ""),
                content_length=None,
                spool_dir=self.spool_dir,
            ):
                media = parse_content_type(part.content_type)[0] if part.content_type else ""
                if found is None and media == DICOM and part.size:
                    found = part
                else:
                    part.discard()
        except MultipartError as exc:
            if found is not None:
                found.discard()
            raise XDSRepositoryError(f"WADO-RS answer for {uid}: {exc}", location=uid) from exc
        if found is None:
            raise XDSRepositoryError(f"WADO-RS answer for {uid} holds no instance", location=uid)
        return found
