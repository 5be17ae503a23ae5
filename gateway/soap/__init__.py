"""SOAP 1.2 transport: envelopes, WS-Addressing, faults, MTOM/XOP, safe parsing, WSGI dispatch."""
