"""The test's environment variables, and the process caches and rate limits reset with them."""

from __future__ import annotations

import pytest

import app as application
from chalicelib import config
from chalicelib.process_caches import reset_process_caches
from chalicelib.web.ratelimit import TenantRateLimiter
from chalicelib.web.responses import RateLimitMiddleware


def rate_limit_middleware() -> RateLimitMiddleware:
    """The app's in-app rate limiting middleware."""
    return next(
        handler for handler, _ in application.app.middleware_handlers if isinstance(handler, RateLimitMiddleware)
    )


def clear_caches() -> None:
    """Forget the process's caches and the app's rate-limit buckets.

    The DynamoDB client is kept: it holds no data (moto's state lives in its backends, reset by
    each mock_aws) and making one costs about 0.1 s, which every integration test would pay.
    """
    reset_process_caches(keep_dynamodb_client=True)
    rate_limit_middleware().limiter = TenantRateLimiter()


class Environment:
    """Sets environment variables for a test and rereads the settings from them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch

    def set(self, **values: str | None) -> None:
        """Change variables (None removes one) and read the settings from them at once."""
        self.set_unread(**values)
        # Read the settings now, outside any request: chalice.test.Client swaps in the stage's
        # environment during requests, and the settings must come from the test's environment.
        config.get_settings()

    def set_unread(self, **values: str | None) -> None:
        """Change variables and forget the settings without reading them (for invalid ones)."""
        for name, value in values.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, value)
        clear_caches()
