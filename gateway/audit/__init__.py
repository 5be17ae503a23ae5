"""Audit trail (ITI-20): DICOM audit messages and their delivery (syslog over TLS/UDP, file)."""
