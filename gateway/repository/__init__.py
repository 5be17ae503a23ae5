"""The Document Repository actor: document storage, ITI-41 and ITI-43.

Modules: ``storage`` (where the bytes live, a backend interface), ``index`` (what the repository
holds and in which state), ``registry_client`` (how it reaches *a* registry: in-process or SOAP),
``checks`` (the pure ITI-41 rules), ``actor`` (:class:`~gateway.repository.actor.Repository`,
the write path and its crash recovery), ``iti41``/``iti43`` (thin SOAP handlers; the ITI-43 bodies
are ``gateway.metadata.retrieve``), ``cli`` (``provide`` and ``retrieve``).

Standard: ITI TF-2 §3.41 (Provide and Register Document Set-b), §3.43 (Retrieve Document Set).
"""
