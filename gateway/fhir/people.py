"""People and organizations of the metadata as contained FHIR resources, both directions.

MHD Comprehensive metadata contains them (ITI TF-3 §4.5.1.1; StructureDefinition
IHE.MHD.Comprehensive.DocumentReference: author, authenticator and context.sourcePatientInfo
have aggregation ``contained``):

- an XDS author (ITI TF-3 §4.2.3.1.4) is a Practitioner (authorPerson, authorTelecommunication),
  an Organization (authorInstitution) or, when it has both or a role or specialty, a
  PractitionerRole naming the two, with ``code`` = authorRole and ``specialty`` =
  authorSpecialty (as text: XDS keeps them as strings);
- legalAuthenticator (XCN) is a Practitioner;
- sourcePatientId and sourcePatientInfo (ITI TF-3 §4.2.3.2.19/.20, PID-3/5/7/8/11) are a
  Patient.

Limits: an author with several institutions keeps the first one as PractitionerRole.organization
and the others as further Organization references of the same resource; a telephone number is
kept as an unformatted number (XTN.12).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.fhir.datatypes import (
    RFC3986,
    URN_OID,
    DataTypeError,
    cx_of_identifier,
    patient_identifier,
)
from gateway.metadata.datatypes import (
    XCN,
    XON,
    is_oid,
    parse_cx,
    parse_xcn,
    parse_xon,
    parse_xtn,
)
from gateway.metadata.datatypes import (
    DataTypeError as XdsDataTypeError,
)
from gateway.metadata.model import Author

Resolve = Callable[[Any, str], dict[str, Any] | None]  # reference, where -> resource or None

_GENDERS = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other"}
_SEXES = {"male": "M", "female": "F", "other": "O", "unknown": "U"}


# -- XDS -> FHIR ---------------------------------------------------------------------------------
def _human_name(xcn: XCN) -> dict[str, Any]:
    name: dict[str, Any] = {}
    if xcn.family_name:
        name["family"] = xcn.family_name
    given = [g for g in (xcn.given_name, *xcn.second_names.split("&")) if g]
    if given:
        name["given"] = given
    if xcn.prefix:
        name["prefix"] = [xcn.prefix]
    if xcn.suffix:
        name["suffix"] = [xcn.suffix]
    return name


def _telecom(xtn: str) -> dict[str, Any] | None:
    try:
        parsed = parse_xtn(xtn)
    except XdsDataTypeError:
        return None
    if parsed.equipment_type == "Internet":
        return {"system": "email", "value": parsed.email}
    number = parsed.unformatted or " ".join(
        p
        for p in (
            parsed.country_code and f"+{parsed.country_code}",
            parsed.area_code,
            parsed.local_number,
        )
        if p
    )
    system = "fax" if parsed.equipment_type == "FX" else "phone"
    return {"system": system, "value": number} if number else None


def practitioner(resource_id: str, xcn_text: str, telecoms: Sequence[str] = ()) -> dict[str, Any]:
    """A contained Practitioner of an XCN (author person or legalAuthenticator)."""
    resource: dict[str, Any] = {"resourceType": "Practitioner", "id": resource_id}
    try:
        xcn = parse_xcn(xcn_text)
    except XdsDataTypeError:
        resource["name"] = [{"text": xcn_text}]
        return resource
    if xcn.id:
        identifier: dict[str, Any] = {"value": xcn.id}
        if xcn.assigning_authority:
            identifier["system"] = URN_OID + xcn.assigning_authority
        resource["identifier"] = [identifier]
    name = _human_name(xcn)
    if name:
        resource["name"] = [name]
    found = [t for t in (_telecom(x) for x in telecoms) if t]
    if found:
        resource["telecom"] = found
    return resource


def organization(resource_id: str, xon_text: str) -> dict[str, Any]:
    """A contained Organization of an XON (authorInstitution)."""
    try:
        xon = parse_xon(xon_text)
    except XdsDataTypeError:
        return {"resourceType": "Organization", "id": resource_id, "name": xon_text}
    resource: dict[str, Any] = {"resourceType": "Organization", "id": resource_id, "name": xon.name}
    if xon.identifier:
        if xon.assigning_authority:
            resource["identifier"] = [
                {"system": URN_OID + xon.assigning_authority, "value": xon.identifier}
            ]
        else:
            resource["identifier"] = [{"system": RFC3986, "value": URN_OID + xon.identifier}]
    return resource


def author_resources(author: Author, prefix: str) -> tuple[str, list[dict[str, Any]]]:
    """The contained resources of one author and the id the author reference names."""
    person_id, role_id = f"{prefix}p", f"{prefix}r"
    organizations = [
        organization(f"{prefix}o{n}" if n else f"{prefix}o", text)
        for n, text in enumerate(author.institution)
    ]
    person = practitioner(person_id, author.person, author.telecom) if author.person else None
    if person is not None and not (organizations or author.role or author.specialty):
        return person_id, [person]
    if person is None and organizations and not (author.role or author.specialty):
        if author.telecom and organizations:
            found = [t for t in (_telecom(x) for x in author.telecom) if t]
            if found:
                organizations[0]["telecom"] = found
        return organizations[0]["id"], organizations
    role: dict[str, Any] = {"resourceType": "PractitionerRole", "id": role_id}
    if person is not None:
        role["practitioner"] = {"reference": f"#{person_id}"}
    if organizations:
        role["organization"] = {"reference": f"#{organizations[0]['id']}"}
    if author.role:
        role["code"] = [{"text": text} for text in author.role]
    if author.specialty:
        role["specialty"] = [{"text": text} for text in author.specialty]
    if person is None and author.telecom:
        role["telecom"] = [t for t in (_telecom(x) for x in author.telecom) if t]
    contained = [role, *([person] if person else []), *organizations]
    return role_id, contained


def _pid5(name: str) -> dict[str, Any]:
    parts = [*name.split("^"), "", "", "", "", ""]
    family, given, middle, suffix, prefix = parts[:5]
    result: dict[str, Any] = {}
    if family:
        result["family"] = family
    givens = [g for g in (given, middle) if g]
    if givens:
        result["given"] = givens
    if suffix:
        result["suffix"] = [suffix]
    if prefix:
        result["prefix"] = [prefix]
    return result


def _pid11(address: str) -> dict[str, Any]:
    parts = [*address.split("^"), "", "", "", "", "", ""]
    street, other, city, state, postal, country = parts[:6]
    result: dict[str, Any] = {}
    lines = [street.split("&")[0], other]
    if any(lines):
        result["line"] = [line for line in lines if line]
    for key, value in (("city", city), ("state", state), ("postalCode", postal)):
        if value:
            result[key] = value
    if country:
        result["country"] = country
    return result


def source_patient(
    resource_id: str, source_patient_id: str | None, info: list[str]
) -> dict[str, Any]:
    """A contained Patient of sourcePatientId and sourcePatientInfo (PID-3, 5, 7, 8, 11)."""
    resource: dict[str, Any] = {"resourceType": "Patient", "id": resource_id}
    identifiers: list[dict[str, Any]] = []
    ids = [source_patient_id] if source_patient_id else []
    for value in info:
        field_name, _sep, content = value.partition("|")
        if field_name == "PID-3":
            ids.append(content)
        elif field_name == "PID-5" and content:
            resource.setdefault("name", []).append(_pid5(content))
        elif field_name == "PID-7" and len(content) >= 8 and content[:8].isdigit():
            resource["birthDate"] = f"{content[:4]}-{content[4:6]}-{content[6:8]}"
        elif field_name == "PID-8" and content.upper() in _GENDERS:
            resource["gender"] = _GENDERS[content.upper()]
        elif field_name == "PID-11" and content:
            resource.setdefault("address", []).append(_pid11(content))
    for cx in dict.fromkeys(ids):
        try:
            identifiers.append(patient_identifier(cx))
        except XdsDataTypeError:
            identifiers.append({"value": cx})
    if identifiers:
        resource["identifier"] = identifiers
    return resource


# -- FHIR -> XDS ---------------------------------------------------------------------------------
def _xcn(resource: dict[str, Any]) -> str | None:
    identifiers = resource.get("identifier") or []
    ident = identifiers[0] if identifiers and isinstance(identifiers[0], dict) else {}
    id_value = str(ident.get("value") or "")
    system = str(ident.get("system") or "")
    authority = system[len(URN_OID) :] if system.startswith(URN_OID) else ""
    names = resource.get("name") or []
    name = names[0] if names and isinstance(names[0], dict) else {}
    given = [str(g) for g in name.get("given") or []]
    xcn = XCN(
        id=id_value,
        family_name=str(name.get("family") or ""),
        given_name=given[0] if given else "",
        second_names="&".join(given[1:]),
        suffix=" ".join(str(s) for s in name.get("suffix") or []),
        prefix=" ".join(str(p) for p in name.get("prefix") or []),
        assigning_authority=authority if is_oid(authority) else "",
    )
    text = str(xcn)
    return text or None


def _xon(resource: dict[str, Any]) -> str | None:
    name = resource.get("name")
    if not isinstance(name, str) or not name:
        return None
    identifiers = resource.get("identifier") or []
    ident = identifiers[0] if identifiers and isinstance(identifiers[0], dict) else {}
    system, value = str(ident.get("system") or ""), str(ident.get("value") or "")
    if system == RFC3986 and value.startswith(URN_OID):
        return str(XON(name=name, identifier=value[len(URN_OID) :]))
    if system.startswith(URN_OID) and value:
        return str(XON(name=name, assigning_authority=system[len(URN_OID) :], identifier=value))
    return name


def _xtns(resource: dict[str, Any]) -> list[str]:
    found = []
    for telecom in resource.get("telecom") or []:
        if not isinstance(telecom, dict) or not telecom.get("value"):
            continue
        value = str(telecom["value"])
        if telecom.get("system") == "email":
            found.append(f"^^Internet^{value}")
        elif telecom.get("system") in ("phone", "fax"):
            kind = "FX" if telecom["system"] == "fax" else "PH"
            found.append(f"^^{kind}^^^^^^^^^{value}")
    return found


def _texts(concepts: Any) -> list[str]:
    values = []
    for item in concepts or []:
        if not isinstance(item, dict):
            continue
        text = item.get("text")
        if not text:
            codings = item.get("coding") or []
            text = codings[0].get("code") if codings and isinstance(codings[0], dict) else None
        if text:
            values.append(str(text))
    return values


def author_of(reference: Any, resolve: Resolve, where: str) -> Author:
    """The XDS author a DocumentReference.author / List.source reference names.

    Raises: DataTypeError for a reference that resolves nowhere or to another resource type.
    """
    resource = resolve(reference, where)
    if resource is None:
        raise DataTypeError(f"{where}: the author reference does not resolve in the Bundle")
    kind = resource.get("resourceType")
    if kind == "Practitioner":
        return Author(person=_xcn(resource), telecom=_xtns(resource))
    if kind == "Organization":
        xon = _xon(resource)
        return Author(institution=[xon] if xon else [], telecom=_xtns(resource))
    if kind == "PractitionerRole":
        person = resolve(resource.get("practitioner"), f"{where}.practitioner")
        org = resolve(resource.get("organization"), f"{where}.organization")
        xon = _xon(org) if org else None
        return Author(
            person=_xcn(person) if person else None,
            institution=[xon] if xon else [],
            role=_texts(resource.get("code")),
            specialty=_texts(resource.get("specialty")),
            telecom=_xtns(person) if person else _xtns(resource),
        )
    raise DataTypeError(
        f"{where}: an author must be a Practitioner, PractitionerRole or Organization"
    )


def legal_authenticator_of(reference: Any, resolve: Resolve, where: str) -> str | None:
    """legalAuthenticator (XCN) of DocumentReference.authenticator. Raises: DataTypeError."""
    resource = resolve(reference, where)
    if resource is None or resource.get("resourceType") not in ("Practitioner", "PractitionerRole"):
        raise DataTypeError(f"{where}: the authenticator must be a contained Practitioner")
    if resource["resourceType"] == "PractitionerRole":
        resource = resolve(resource.get("practitioner"), f"{where}.practitioner") or {}
    return _xcn(resource)


def source_patient_of(reference: Any, resolve: Resolve, where: str) -> tuple[str, list[str]]:
    """sourcePatientId and sourcePatientInfo of context.sourcePatientInfo (a contained Patient).

    Raises: DataTypeError (no Patient, or no identifier usable as a CX).
    """
    resource = resolve(reference, where)
    if resource is None or resource.get("resourceType") != "Patient":
        raise DataTypeError(f"{where}: sourcePatientInfo must be a contained Patient")
    ids = []
    for n, identifier in enumerate(resource.get("identifier") or []):
        try:
            ids.append(cx_of_identifier(identifier, f"{where}.identifier[{n}]"))
        except DataTypeError:
            continue
    if not ids:
        raise DataTypeError(f"{where}: the source patient needs an identifier with a urn:oid:")
    info = [f"PID-3|{cx}" for cx in ids]
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            given = [str(g) for g in name.get("given") or []] + ["", ""]
            suffix = " ".join(str(s) for s in name.get("suffix") or [])
            prefix = " ".join(str(p) for p in name.get("prefix") or [])
            parts = [str(name.get("family") or ""), given[0], given[1], suffix, prefix]
            text = "^".join(parts).rstrip("^")
            if text:
                info.append(f"PID-5|{text}")
    birth = resource.get("birthDate")
    if isinstance(birth, str) and len(birth) >= 10:
        info.append(f"PID-7|{birth[:10].replace('-', '')}")
    gender = _SEXES.get(str(resource.get("gender") or ""))
    if gender:
        info.append(f"PID-8|{gender}")
    return ids[0], info


def cx_is_valid(value: str) -> bool:
    """True when ``value`` is an XDS patient id (CX with an ISO assigning authority)."""
    try:
        parse_cx(value)
    except XdsDataTypeError:
        return False
    return True
