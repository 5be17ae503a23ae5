"""DICOM transfer syntaxes the gateway's actors store, serve and ask for, in one table.

PS3.5 Annex A (native: implicit/explicit VR little endian, deflated, big endian) and PS3.6 Annex A
(the encapsulated ones: JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE, MPEG-2/4, HEVC). The imaging
source accepts all of them over C-STORE and stores them as sent; the consumer lists them in
RAD-69 requests (RAD TF-3 §4.69.4.1.2).
"""

from __future__ import annotations

NATIVE = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian (PS3.5 §A.2)
    "1.2.840.10008.1.2",  # Implicit VR Little Endian (PS3.5 §A.1)
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian (PS3.5 §A.5)
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still found in archives)
)
COMPRESSED = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K (Lossless Only)
    "1.2.840.10008.1.2.4.202",  # HTJ2K with RPCL Options (Lossless Only)
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.100",  # MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.101",  # MPEG2 Main Profile / High Level
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 High Profile / Level 4.1
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1
    "1.2.840.10008.1.2.4.104",  # MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video
    "1.2.840.10008.1.2.4.105",  # MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video
    "1.2.840.10008.1.2.4.106",  # MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main Profile / Level 5.1
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 Main 10 Profile / Level 5.1
)
