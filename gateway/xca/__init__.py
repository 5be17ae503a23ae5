"""Cross-community access: XCA (ITI-38, ITI-39) and XCA-I (RAD-75), both gateways.

- :mod:`~gateway.xca.responding`: the Responding Gateway and Responding Imaging Gateway at
  ``/xca/rg`` answer other communities from this community's registry, repositories and
  imaging document sources (:mod:`~gateway.xca.local`).
- :mod:`~gateway.xca.initiating`: the Initiating Gateway (XDS Affinity Domain option) and
  Initiating Imaging Gateway at ``/xca/ig`` answer this community's consumers (ITI-18, ITI-43,
  RAD-69) from the local actors and, in parallel, from every configured remote community
  (:mod:`~gateway.xca.remote`, :mod:`~gateway.xca.fanout`).

The room reaches the other actors only through callables wired in ``gateway/app.py`` (the
registry's stored queries, the repository's and the imaging source's retrieve, the patient
cross-reference) or through their SOAP endpoints (:mod:`~gateway.xca.clients`). XML stays in the
codecs of ``gateway.metadata``.

Standards: ITI TF-1 §18 (XCA), ITI TF-2 §3.38, §3.39; RAD TF-1 (XCA-I), RAD TF-3 §4.75.
"""
