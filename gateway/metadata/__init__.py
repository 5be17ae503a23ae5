"""The XDS metadata room: model, vocabulary, HL7 data types, ebRIM 3.0 codec and validation.

Standard: ITI TF-3 §4 (Metadata used in Document Sharing profiles), ebRIM/ebRS 3.0.
Only ``ebrim.py`` touches XML; everything else is plain Python.
"""
