"""The time a request (or an authorization) has left, which every call to a dependency honours.

A Lambda function still running at its timeout is killed, and API Gateway then answers 502 or
504 without the API's envelope; API Gateway also gives up on an integration after 29 s. So each
invocation gets a deadline a little before the earlier of the two, and calls to DynamoDB,
Secrets Manager and the JWKS are bounded by it: no attempt is started, no answer waited for and
no retry slept for past it. Once the budget is spent the request answers 503
service_unavailable with Retry-After (errors.DeadlineExceeded) while it still can.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, TypeVar

from chalicelib.errors import DeadlineExceeded
from chalicelib.telemetry.logs import logger

T = TypeVar("T")

# API Gateway's integration timeout for REST APIs (the default, and the limit without a quota raise).
API_GATEWAY_TIMEOUT_SECONDS = 29.0
# Kept back from the budget to render, log and return the answer.
ANSWER_MARGIN_SECONDS = 0.5
# The budget of an invocation that has no Lambda context: the stages' configured lambda_timeout.
DEFAULT_TIMEOUT_SECONDS = 10.0
# An AWS call's connection phase is bounded by the client's connect timeout, which cannot be
# changed per call: a call is only started while both it and a useful read still fit.
CONNECT_TIMEOUT_SECONDS = 1.0
MIN_READ_SECONDS = 0.05
# botocore's standard retry mode waits up to base x 2**(attempt - 1) before a retry, base being
# 1 s after a throttling answer and 25 ms (DynamoDB; 50 ms for other services) after any other
# failure, such as a timeout (botocore.retries.standard.ExponentialBackoff): a retry is only
# allowed while the longest pause it may get and another attempt fit.
RETRY_PAUSE_BASE_SECONDS = 1.0
RETRY_PAUSE_BASE_AFTER_NO_ANSWER_SECONDS = 0.05
RETRY_PAUSE_MAX_SECONDS = 20.0


class LambdaContext(Protocol):
    """The part of Lambda's context object the budget reads."""

    def get_remaining_time_in_millis(self) -> float: ...


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which the current invocation must have answered."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the invocation running on this thread, or None outside one (scripts, seeding)."""
    return _current.get()


def budget_seconds(lambda_context: LambdaContext | None) -> float:
    """What an invocation may spend: its remaining time, within API Gateway's, less the answer's margin."""
    if lambda_context is None:
        available = DEFAULT_TIMEOUT_SECONDS
    else:
        available = lambda_context.get_remaining_time_in_millis() / 1000
    return max(0.0, min(available, API_GATEWAY_TIMEOUT_SECONDS) - ANSWER_MARGIN_SECONDS)


@contextlib.contextmanager
def answering_within(lambda_context: LambdaContext | None) -> Iterator[Deadline]:
    """Run the block as one invocation whose calls must end within budget_seconds(lambda_context)."""
    deadline = Deadline(time.monotonic() + budget_seconds(lambda_context))
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def within_invocation_deadline(event: Any, get_response: Callable[[Any], T]) -> T:
    """HTTP middleware: the request's calls share the deadline of its Lambda invocation."""
    with answering_within(event.lambda_context):
        return get_response(event)


def in_current_context(function: Callable[[], T]) -> Callable[[], T]:
    """function, to be run on another thread under this thread's deadline (a context per call)."""
    context = contextvars.copy_context()
    return lambda: context.run(function)


def io_timeout(longest: float, waits: int = 1) -> float:
    """The timeout for each of `waits` blocking network waits: at most longest, all within the deadline.

    Raises DeadlineExceeded when not even short waits fit any more.
    """
    deadline = current()
    if deadline is None:
        return longest
    each = deadline.remaining() / waits
    if each < MIN_READ_SECONDS:
        logger.warning("time budget spent", extra={"call": "network wait"})
        raise DeadlineExceeded()
    return min(longest, each)


def _leaves_room_for(pause: float) -> bool:
    """Whether a pause this long and then one more call fit the deadline (always, outside an invocation)."""
    deadline = current()
    return deadline is None or deadline.remaining() >= pause + CONNECT_TIMEOUT_SECONDS + MIN_READ_SECONDS


def check_pause(seconds: float) -> float:
    """seconds, if a pause that long and one more call still fit the deadline; else DeadlineExceeded."""
    if not _leaves_room_for(seconds):
        logger.warning("time budget spent", extra={"call": "pause before a retry"})
        raise DeadlineExceeded()
    return seconds


def spent() -> bool:
    """Whether the current invocation's budget no longer holds another call."""
    return not _leaves_room_for(0.0)


def _bound_attempt(request: Any, event_name: str = "before-send", **_: Any) -> None:
    """before-send: refuse an attempt the deadline cannot hold; give the others a read timeout that fits."""
    deadline = current()
    if deadline is None:
        return
    context = getattr(request, "context", None)
    context = context if context is not None else {}
    read_time = deadline.remaining() - CONNECT_TIMEOUT_SECONDS
    if read_time < MIN_READ_SECONDS:
        attempt = context.get("retries", {}).get("attempt", 1)
        # One line per refusal, so that a spent budget is told apart from throttling in the logs.
        logger.warning("time budget spent", extra={"call": event_name, "attempts_sent": attempt - 1})
        raise DeadlineExceeded(attempts_sent=attempt - 1)
    client_config = context.get("client_config")
    configured = getattr(client_config, "read_timeout", None) or read_time
    # botocore reads this per request (httpsession.URLLib3Session._get_request_timeout).
    context["read_timeout"] = min(configured, read_time)


def _veto_late_retry(attempts: int, caught_exception: BaseException | None = None, **_: Any) -> bool | None:
    """needs-retry: no retry whose pause could outlast the deadline (None lets botocore decide)."""
    # A call that got no answer (timed out, connection lost) was not throttled: the short base applies.
    base = RETRY_PAUSE_BASE_SECONDS if caught_exception is None else RETRY_PAUSE_BASE_AFTER_NO_ANSWER_SECONDS
    longest_pause = min(base * 2 ** (attempts - 1), RETRY_PAUSE_MAX_SECONDS)
    return None if _leaves_room_for(longest_pause) else False


def bounded_by_deadline(client: T) -> T:
    """The boto3 client, its calls from now on bounded by the deadline of the invocation making them."""
    events = client.meta.events  # type: ignore[attr-defined]
    service = client.meta.service_model.service_id.hyphenize()  # type: ignore[attr-defined]
    events.register(f"before-send.{service}", _bound_attempt, unique_id=f"deadline-attempt-{service}")
    # First, so that its veto is the answer botocore's retry handler would otherwise give.
    events.register_first(f"needs-retry.{service}", _veto_late_retry, unique_id=f"deadline-retry-{service}")
    return client
