"""HL7 v2 side of the gateway: the ITI-8 Patient Identity Feed over MLLP.

Modules, from the wire up (imports point downward only):

* :mod:`gateway.hl7.mllp`: MLLP framing, the asyncio :class:`~gateway.hl7.mllp.MLLPServer`
  (own loop in a background thread) and the blocking client.
* :mod:`gateway.hl7.er7`: ER7 wire helpers (MSH header, MSH-18 character sets, escapes).
* :mod:`gateway.hl7.ack`: building and reading ACK messages (MSA, ERR).
* :mod:`gateway.hl7.adt`: ADT A01/A04/A05/A08/A40 decoded with hl7apy into dataclasses.
* :mod:`gateway.hl7.feed`: the registry's ITI-8 handler and the ``xdsi-gateway feed`` logic.

This room imports nothing of the gateway except :mod:`gateway.errors`.
"""
