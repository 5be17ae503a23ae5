"""The exchange browser (``/ui/``) and the operators' metrics (``/metrics``).

- :mod:`gateway.ui.web`: the WSGI application at ``/ui``: dashboard, patient search, patient,
  study (thumbnails and viewer) and document pages, login; server-rendered (Jinja2 templates
  and static assets shipped in the package, no CDN).
- :mod:`gateway.ui.ports`: what the pages need of the actors, as plain callables the assembly
  (``gateway/app.py``) builds from their public interfaces; this room imports no actor.
- :mod:`gateway.ui.accounts`, :mod:`gateway.ui.sessions`: operator accounts (scrypt hashes),
  signed session cookies, CSRF tokens, the login rate limit.
- :mod:`gateway.ui.journal`: recent transactions and failed logins in the gateway database,
  shared by every worker process.
- :mod:`gateway.ui.metrics`: Prometheus metrics (prometheus-client; multiprocess mode under
  ``serve --workers``).
"""
