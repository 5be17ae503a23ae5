"""Fixtures of the media tests (``media_env``)."""

from tests.integration.media.media_env import world

__all__ = ["world"]
