"""An affinity domain's code set: which codes each classification scheme allows.

The file format is the NIST XDS Toolkit ``codes.xml`` (``<Codes><CodeType name= classScheme=>
<Code code= display= codingScheme=/>``; the ``mimeType`` CodeType lists allowed MIME types), the
configuration every Connectathon registry is tested with. Standard: ITI TF-3 §4.2.3.1.2 (coded
vocabularies are defined by the affinity domain); checking them is a registry policy (ITI TF-2
§3.42.4.1.3), hence optional in ``gateway.metadata.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from lxml import etree

from gateway.metadata.datatypes import Code
from gateway.soap.safexml import parse_bytes

_MIME_TYPE = "mimeType"


@dataclass(frozen=True, slots=True)
class CodeSet:
    """Allowed ``(code, codingScheme)`` pairs per classification scheme UUID, and MIME types."""

    codes: MappingProxyType[str, frozenset[tuple[str, str]]]
    mime_types: frozenset[str]

    @classmethod
    def load(cls, path: str | Path) -> CodeSet:
        """Read a NIST-format ``codes.xml`` file.

        Raises: UnsafeXMLError (not well-formed), ValueError (not a ``<Codes>`` document).
        """
        return cls.from_element(parse_bytes(Path(path).read_bytes()))

    @classmethod
    def from_element(cls, root: etree._Element) -> CodeSet:
        """Build a code set from the parsed ``<Codes>`` element."""
        if etree.QName(root).localname != "Codes":
            raise ValueError(f"not a code set: root element {root.tag}")
        codes: dict[str, set[tuple[str, str]]] = {}
        mime_types: set[str] = set()
        for code_type in root.iter("CodeType"):
            values = [
                (c.get("code", ""), c.get("codingScheme", "")) for c in code_type.iter("Code")
            ]
            if code_type.get("name") == _MIME_TYPE:
                mime_types.update(code for code, _ in values)
            elif code_type.get("classScheme"):
                codes.setdefault(code_type.get("classScheme", ""), set()).update(values)
        frozen = {scheme: frozenset(pairs) for scheme, pairs in codes.items()}
        return cls(MappingProxyType(frozen), frozenset(mime_types))

    def knows(self, scheme: str) -> bool:
        """True when the code set constrains this classification scheme."""
        return scheme in self.codes

    def allows(self, scheme: str, code: Code) -> bool:
        """True when the scheme is unconstrained or lists this code with its codingScheme."""
        allowed = self.codes.get(scheme)
        return allowed is None or (code.code, code.scheme) in allowed

    def allows_mime_type(self, mime_type: str) -> bool:
        """True when no MIME types are configured or this one is listed."""
        return not self.mime_types or mime_type in self.mime_types
