"""xdsi-gateway: every actor of IHE XDS-I.b in one Python package."""

__version__ = "0.1.0"
