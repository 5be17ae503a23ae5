"""Push and notification: one durable outbox and what goes through it.

- ``outbox``: the ``notify_outbox`` table's queue: enqueue in the caller's transaction, claim
  under process leases, retry with back-off, keep the order of a sequence;
- ``filters``: the FindDocuments-style filter of DSUB subscriptions and webhooks;
- ``webhook``: CloudEvents 1.0 structured JSON, HMAC-SHA256 signed;
- ``forward``: ``[[imaging_source.forward]]`` rules and the C-STORE sender (pynetdicom);
- ``dsub``: the Document Metadata Notification Broker (ITI-52 Subscribe/Unsubscribe, ITI-53);
- ``xdr``: the XDR Document Recipient's inbox and ``push`` (ITI-41 / RAD-68 without registry);
- ``notifier``: the narrow interface the assembly hands the registry and the imaging source.
"""
