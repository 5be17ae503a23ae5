"""Portable media: PDI import with IRWF.b reconciliation, PDI export, PS3.15 de-identification."""
