"""HTTP clients for the official public APIs (ESCO, BERUFENET, Weiterbildungssuche)."""

from knowledge.clients.http import ApiClient, ApiError, RateLimiter, SourceUnavailable

__all__ = ["ApiClient", "ApiError", "RateLimiter", "SourceUnavailable"]
