"""Tests of xdsi-gateway (package so that tests.conformance.nist is importable)."""
