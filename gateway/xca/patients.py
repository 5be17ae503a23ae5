"""The patient's identifier in another community's domain, for the Initiating Gateway.

Communities of one region often share the affinity domain's patient identifiers; then a query
goes out unchanged. A community that assigns its own identifiers (``patient_id_domain`` of its
``[xca.communities]`` table) is asked about the identifier the patient has there, as ITI-8 feeds
made it known: a feed whose PID-3 lists the patient's identifiers in several domains leaves the
others in the registry's cross-reference (ITI TF-2 §3.8.4.1.3), which ``lookup`` reads. When no
identifier in that domain is known, the community is not asked, and the answer says so with a
Warning (XDSUnknownPatientId, location: the community), which leaves the status as it is.

Patient identifiers are never discovered across communities here: XCPD (ITI-55) is out of scope.
Standard: ITI TF-1 §18.2.3 (patient identifiers across communities).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import SEVERITY_WARNING
from gateway.metadata.datatypes import DataTypeError, parse_cx
from gateway.metadata.query import AdhocQuery, patient_ids, with_patient_ids
from gateway.metadata.retrieve import RegistryError

PatientLookup = Callable[[str, str], list[str]]  # (patient id, domain OID) -> its ids there


def domain_of(pid: str) -> str | None:
    """The assigning authority OID of a CX patient id (``ID^^^&OID&ISO``), or None."""
    try:
        return parse_cx(pid).assigning_authority
    except DataTypeError:
        return None


def for_community(
    query: AdhocQuery, *, home: str, domain: str, lookup: PatientLookup | None
) -> AdhocQuery | RegistryError:
    """``query`` with its patient ids replaced by their ids in ``domain``, or the warning that
    the community at ``home`` was skipped. Standard: ITI TF-1 §18.2.3."""
    if not domain:
        return query
    mapping: dict[str, str] = {}
    for pid in patient_ids(query):
        if domain_of(pid) == domain:
            continue
        found = lookup(pid, domain) if lookup is not None else []
        if not found:
            return RegistryError(
                code="XDSUnknownPatientId",
                severity=SEVERITY_WARNING,
                location=home,
                context=(
                    f"community {home} was not asked: no identifier of patient {pid} in its "
                    f"domain {domain} is known (an ITI-8 feed listing both ids cross-references "
                    "them; XCPD is not supported)"
                ),
            )
        mapping[pid] = found[0]
    return with_patient_ids(query, mapping) if mapping else query
