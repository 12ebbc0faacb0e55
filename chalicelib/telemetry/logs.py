"""The function's structured log (Powertools Logger): JSON lines, with the trace id, and without the caller's location.

Every line is one JSON object; the request's own line also carries its metrics
(chalicelib.telemetry.emf). Refusals worth an operator's attention are security events, and a
missing setting is one line naming all that are missing.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from chalicelib.config import local_stack_hint
from chalicelib.errors import ConfigurationError
from chalicelib.telemetry import tracing

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "tenant-api")


class TraceCorrelatingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log format, with the trace id of the open span where Lambda gives none.

    In Lambda the trace id comes from the invocation's environment; under chalice local and
    in tests each request opens its own segment, whose id the log lines should carry instead.
    """

    def _get_latest_trace_id(self) -> str | None:
        return super()._get_latest_trace_id() or tracing.current_trace_id()


logger = Logger(
    service=SERVICE,
    logger_formatter=TraceCorrelatingFormatter(utc=True, datefmt="%Y-%m-%dT%H:%M:%S.%F%z"),
)
# An error's stack already says where; on every other line the logging call's location is noise,
# billed by the byte.
logger.remove_keys(["location"])


def report_misconfiguration(error: ConfigurationError, lead: str = "answering 503 service_unavailable") -> None:
    """Log one line: lead, then the settings at fault (and, under chalice local, how to get them)."""
    logger.error(
        f"{lead}: the API is not configured: {error.detail}.{local_stack_hint()}",
        extra={"misconfigured_settings": list(error.settings)},
    )


def security_event(reason: str, **details: Any) -> None:
    """Log a refusal or probe worth an operator's attention, never with a token or secret."""
    logger.warning("security event", extra={"security_event": reason, **details})
