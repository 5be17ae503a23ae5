"""Checks on a response: ExpectedStatus, ExpectedErrorCode/Message, XPath assertions.

Semantics follow the NIST engine (``BasicTransaction.eval_expected_status`` and
``validate_registry_response_no_set_status``, ``AssertionEngine``; read, not copied):

* ``ExpectedStatus`` (comma-separated alternatives) is compared with the full status URN
  (``urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success|Failure``,
  ``urn:ihe:iti:2007:ResponseStatusType:PartialSuccess``); a SOAP Fault is acceptable only when
  the expected status is ``Fault``;
* ``ExpectedErrorCode``: some ``RegistryError/@errorCode`` equals it exactly;
* ``ExpectedErrorMessage``: it is a substring of the ``errorCode`` or ``codeContext`` of some
  Error-severity ``RegistryError``; only legal with ExpectedStatus Failure;
* an assertion passes when the string value of its XPath, evaluated over
  ``<Data><output>`` + the section log, is ``true``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from tests.conformance.nist import ns
from tests.conformance.nist.plan import PlanError, Step
from tests.conformance.nist.xmlutil import Element, copy, kids, local, substitute, walk, xpath_value


@dataclass(slots=True, kw_only=True)
class RegistryError:
    """One ``rs:RegistryError`` (ebRS 3.0 rs.xsd; codes: ITI TF-3 Table 4.2.4.1-2)."""

    code: str
    context: str
    severity: str
    location: str = ""

    @property
    def is_error(self) -> bool:
        """Error severity (the schema default when the attribute is absent)."""
        return self.severity in ("", ns.ERROR_SEVERITY)


@dataclass(slots=True, kw_only=True)
class ResponseStatus:
    """Status and errors of a RegistryResponse-like element."""

    status: str
    errors: list[RegistryError] = field(default_factory=list)


def response_status(body: Element) -> ResponseStatus | None:
    """Status of ``body`` (RegistryResponse, AdhocQueryResponse, or a response containing one)."""
    holder = body if body.get("status") is not None else next(walk(body, "RegistryResponse"), None)
    if holder is None:
        return None
    errors = [
        RegistryError(
            code=e.get("errorCode", ""),
            context=e.get("codeContext", ""),
            severity=e.get("severity", ""),
            location=e.get("location", ""),
        )
        for e in walk(holder, "RegistryError")
    ]
    return ResponseStatus(status=holder.get("status", ""), errors=errors)


def expected_urns(step: Step) -> list[str]:
    """The status URNs ``step`` accepts ('Fault' is kept as is)."""
    urns = []
    for name in step.expected_status:
        if name == "Fault":
            urns.append(name)
        elif name in ns.STATUS_URNS:
            urns.append(ns.STATUS_URNS[name])
        else:
            raise PlanError(f"step {step.id}: unknown ExpectedStatus {name!r}")
    if step.expected_error_message and step.expected_status != ("Failure",):
        raise PlanError(f"step {step.id}: ExpectedErrorMessage needs ExpectedStatus Failure")
    return urns


def check_status(step: Step, status: ResponseStatus) -> list[str]:
    """Problems of ``status`` against the step's ExpectedStatus/ErrorCode/ErrorMessage."""
    problems = []
    urns = expected_urns(step)
    if status.status not in urns:
        problems.append(
            f"status is {status.status or '(none)'}, expected {' or '.join(urns)}"
            + _error_summary(status)
        )
    code = step.expected_error_code
    if code and code not in {e.code for e in status.errors}:
        problems.append(f"expected errorCode {code}, got {[e.code for e in status.errors]}")
    message = step.expected_error_message
    if message and not any(
        message in e.code or message in e.context for e in status.errors if e.is_error
    ):
        problems.append(
            f"expected error message {message!r} not in any Error-severity "
            f"RegistryError{_error_summary(status)}"
        )
    return problems


def check_fault(step: Step, fault_text: str) -> list[str]:
    """A SOAP Fault is a failure unless the step expects ``Fault``."""
    if "Fault" in step.expected_status:
        return []
    return [f"SOAP Fault received ({fault_text}), expected status {','.join(step.expected_status)}"]


def _error_summary(status: ResponseStatus) -> str:
    if not status.errors:
        return ""
    shown = "; ".join(f"{e.code}: {e.context[:120]}" for e in status.errors[:3])
    return f" [{shown}]"


def today() -> str:
    """Today as yyyyMMdd (local time), the value of ``$DATE$`` in NIST assertions."""
    return datetime.datetime.now().strftime("%Y%m%d")


def assertion_data(section_log: Element) -> Element:
    """``<Data><output>`` + a copy of the section log (NIST DataRef file="THIS" as="output")."""
    data = etree.Element("Data")
    output = etree.SubElement(data, "output")
    output.append(copy(section_log))
    return data


def run_assertions(
    asserts: list[Element], data: Element, replacements: Mapping[str, str]
) -> list[str]:
    """Evaluate ``<Assert>`` XPaths over ``data``; return one problem per failing assertion."""
    problems = []
    for assertion in asserts:
        name = assertion.get("id", "?")
        if assertion.get("process"):
            problems.append(
                f"assertion {name}: process={assertion.get('process')} plug-in "
                "is not supported by this runner"
            )
            continue
        holder = copy(assertion)
        substitute(holder, dict(replacements))
        expression = "".join(holder.itertext()).strip()
        if "equalsIgnoreCase" in expression:
            left, _, right = expression.partition("equalsIgnoreCase")
            expression = f"{left.lower()} = {right.lower()}"
        try:
            value = xpath_value(expression, data)
        except etree.XPathError as exc:
            problems.append(f"assertion {name}: bad XPath {expression!r}: {exc}")
            continue
        if value.lower() != "true":
            problems.append(f"assertion {name} failed: {' '.join(expression.split())} -> {value}")
    return problems


def assertions_of(instruction: Element) -> list[Element]:
    """The ``Assert`` elements of the instruction's ``Assertions`` blocks."""
    found: list[Element] = []
    for block in kids(instruction, "Assertions"):
        found.extend(a for a in kids(block) if local(a) == "Assert")
    return found
