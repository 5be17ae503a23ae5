"""cheroot's TLS adapter on the gateway's own context, reporting failed client authentication.

cheroot's ``BuiltinSSLAdapter`` builds its own ``SSLContext`` from files; the gateway replaces
it with :func:`gateway.security.tls.server_context` (TLS 1.2+, BCP 195 ciphers, mutual
authentication) and learns of clients that fail to authenticate, for the audit trail. The
adapter still fills the WSGI environ as before (``SSL_CLIENT_CERT``, ``SSL_CLIENT_S_DN``, ...).

Standard: ITI TF-2 §3.19 (Authenticate Node), §3.20.4.1.1.1 (node-authentication-failure).
"""

from __future__ import annotations

import socket
from typing import Any

from cheroot import errors
from cheroot.ssl.builtin import BuiltinSSLAdapter

from gateway.security.tls import (
    HandshakeFailure,
    TlsFiles,
    authentication_failure,
    report_failure,
)


class GatewaySSLAdapter(BuiltinSSLAdapter):
    """A ``BuiltinSSLAdapter`` on our server context, calling back on authentication failures."""

    def __init__(self, files: TlsFiles, *, on_handshake_failure: HandshakeFailure | None = None):
        super().__init__(files.certificate, files.private_key, files.ca_file)
        self.context = files.server()
        self.on_handshake_failure = on_handshake_failure

    def wrap(self, sock: socket.socket) -> tuple[Any, dict[str, Any]]:
        """Handshake; on an authentication failure report (address, reason), then re-raise."""
        try:
            peer: str | None = sock.getpeername()[0]
        except OSError:
            peer = None
        try:
            return super().wrap(sock)
        except (errors.FatalSSLAlert, errors.NoSSLError) as exc:
            reason = authentication_failure(exc.__cause__) if exc.__cause__ else None
            if reason:
                report_failure(self.on_handshake_failure, peer, reason)
            raise
