"""Security: TLS contexts (ITI-19), peer identities, demo certificates and access rules."""
