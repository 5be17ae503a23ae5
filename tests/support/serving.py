"""Which in-process gateway fixture serves an endpoint: ``gateway``, or ``xca_gateway`` for the
XCA endpoints, which only a gateway with ``[xca]`` on serves (``tests/integration/conftest.py``)."""

from __future__ import annotations

import pytest

from gateway.app import Gateway


def serving(request: pytest.FixtureRequest, path: str) -> Gateway:
    """The gateway fixture that serves ``path``."""
    name = "xca_gateway" if path.startswith("/xca/") else "gateway"
    served: Gateway = request.getfixturevalue(name)
    return served
