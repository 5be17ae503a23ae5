"""The FHIR room: IHE MHD Document Recipient and Document Responder, ImagingStudy and Patient.

Served at ``/fhir`` (FHIR R4 4.0.1, JSON only, ``application/fhir+json``) in front of the same
registry, repository and imaging source as the SOAP endpoints, with the "XDS on FHIR" option:
ITI-65 becomes an ITI-41 Provide and Register (``iti65``), ITI-66 and ITI-67 become ITI-18
stored queries (``iti66``, ``iti67``), ITI-68 an ITI-43 retrieve (``iti68``); ImagingStudy
resources are read from the published KOS manifests (``imaging``); Patient resources from the
identities ITI-8 fed (``patient``).

The mapping between FHIR resources and the XDS metadata model (``gateway.metadata.model``) is
that of MHD's "FHIR Representation of Document Sharing Metadata" (ITI TF-3 §4.5, MHD rev. 4.2.2
read; the normative tables are the "XDS and MHD Mapping" of the StructureDefinitions
IHE.MHD.Minimal.DocumentReference, .SubmissionSet and .Folder): ``docref`` (DocumentEntry <->
DocumentReference), ``lists`` (SubmissionSet and Folder <-> List), ``people`` (authors,
sourcePatientInfo, legalAuthenticator as contained resources), ``datatypes`` (codes, times,
identifiers). Nothing here imports another actor: the registry's queries, the repository's
provide and retrieve, the patient store and the imaging index reach this room as the narrow
callables of :class:`~gateway.fhir.ports.Backends`, wired in ``gateway/app.py``.
"""
