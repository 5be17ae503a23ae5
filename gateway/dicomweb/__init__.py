"""DICOMweb (PS3.18) over the imaging source's stored instances: QIDO-RS, WADO-RS, STOW-RS."""
