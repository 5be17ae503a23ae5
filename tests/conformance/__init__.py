"""Conformance tests: NIST XDS Toolkit test plans and schema checks."""
