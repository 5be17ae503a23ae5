"""The imaging source's own DICOM acceptor: the upper layer (PS3.8) and DIMSE (PS3.7) that a
C-STORE / C-ECHO SCP needs, and nothing more.

Why not pynetdicom here: each message crosses three threads that poll queues with hard-coded
1 ms sleeps (``Association._run_reactor``, ``DULServiceProvider.run_reactor``), and decoding a
message costs about 1 ms of CPU, so a handler that does nothing answers 200-350 C-STOREs a
second; dcmtk's ``storescp`` answers about 2000. None of pynetdicom's public settings removes
that (``_run_loop_delay = 0`` only turns one of the sleeps into a busy loop). This package does
the acceptor's part of the protocol on the association's own thread with blocking reads: no
hand-offs, no polling, the data set streamed to the handler as its fragments arrive. pynetdicom
stays the gateway's SCU (``fetch-study --store-to``) and the test peers' library.

Modules, bottom up: :mod:`.pdu` (PDU framing and items), :mod:`.dimse` (command sets),
:mod:`.negotiation` (what the acceptor answers to an A-ASSOCIATE-RQ), :mod:`.association` (one
association's state machine), :mod:`.server` (the listening socket and association threads).
"""
