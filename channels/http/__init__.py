"""The HTTP API: a FastAPI app over one ``Advisor`` per process (``create_app``; ``server.py`` runs it)."""

from channels.http.app import create_app

__all__ = ["create_app"]
