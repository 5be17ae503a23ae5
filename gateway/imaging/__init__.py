"""The Imaging Document Source of XDS-I.b: DICOM listener, KOS manifests, RAD-68, RAD-69."""
