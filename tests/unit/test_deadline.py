"""Unit tests of the per-invocation deadline: the budget, and how it bounds each AWS call, pause and wait."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from botocore.exceptions import ReadTimeoutError

from chalicelib import deadline
from chalicelib.deadline import (
    ANSWER_MARGIN_SECONDS,
    API_GATEWAY_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
)
from chalicelib.errors import DeadlineExceeded


class LambdaContext:
    """A Lambda context with a fixed remaining time."""

    def __init__(self, remaining_ms: float):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> float:
        return self.remaining_ms


def prepared_request(attempt: int = 1, read_timeout: float = 5.0) -> SimpleNamespace:
    """What botocore's before-send handlers receive: a request whose context is the call's."""
    return SimpleNamespace(
        context={"retries": {"attempt": attempt}, "client_config": SimpleNamespace(read_timeout=read_timeout)}
    )


@pytest.mark.parametrize(
    ("remaining_ms", "budget"),
    [
        (10_000, 10 - ANSWER_MARGIN_SECONDS),
        (3_000, 3 - ANSWER_MARGIN_SECONDS),
        # A 15-minute function behind API Gateway: the gateway gives up at 29 s.
        (900_000, API_GATEWAY_TIMEOUT_SECONDS - ANSWER_MARGIN_SECONDS),
        (100, 0.0),
    ],
)
def test_the_budget_is_the_invocations_remaining_time_within_api_gateways_less_a_margin(remaining_ms, budget):
    assert deadline.budget_seconds(LambdaContext(remaining_ms)) == pytest.approx(budget)


def test_without_a_lambda_context_the_configured_timeout_is_the_budget():
    assert deadline.budget_seconds(None) == DEFAULT_TIMEOUT_SECONDS - ANSWER_MARGIN_SECONDS


def test_the_deadline_holds_only_inside_its_block():
    assert deadline.current() is None
    with deadline.answering_within(LambdaContext(5_000)) as current:
        assert deadline.current() is current
        assert 4.0 < current.remaining() <= 5 - ANSWER_MARGIN_SECONDS
    assert deadline.current() is None


def test_threads_of_the_request_share_its_deadline_only_when_given_it():
    seen = {}
    with deadline.answering_within(LambdaContext(5_000)) as current:
        carried = deadline.in_current_context(deadline.current)
        plain = threading.Thread(target=lambda: seen.setdefault("plain", deadline.current()))
        plain.start()
        plain.join()
        given = threading.Thread(target=lambda: seen.setdefault("given", carried()))
        given.start()
        given.join()
    assert seen == {"plain": None, "given": current}


def test_an_attempt_reads_no_longer_than_the_deadline_leaves_after_connecting():
    request = prepared_request()
    with deadline.answering_within(LambdaContext(3_000)):
        deadline._bound_attempt(request)
    read_timeout = request.context["read_timeout"]
    assert 0 < read_timeout <= 3 - ANSWER_MARGIN_SECONDS - CONNECT_TIMEOUT_SECONDS


def test_an_attempt_with_time_to_spare_keeps_the_clients_read_timeout():
    request = prepared_request(read_timeout=5.0)
    with deadline.answering_within(LambdaContext(20_000)):
        deadline._bound_attempt(request)
    assert request.context["read_timeout"] == 5.0


def test_outside_an_invocation_calls_are_not_bounded():
    request = prepared_request()
    deadline._bound_attempt(request)
    assert "read_timeout" not in request.context
    assert deadline._veto_late_retry(attempts=1) is None
    assert deadline.io_timeout(3.0) == 3.0


@pytest.mark.parametrize("attempt", [1, 3])
def test_an_attempt_that_cannot_fit_is_not_sent(attempt):
    request = prepared_request(attempt=attempt)
    with deadline.answering_within(LambdaContext(1_200)):
        with pytest.raises(DeadlineExceeded) as raised:
            deadline._bound_attempt(request)
    # The earlier attempts were sent: what they did is unknown to the caller.
    assert raised.value.attempts_sent == attempt - 1
    assert raised.value.status == 503 and raised.value.headers["Retry-After"] == "1"


def test_a_retry_is_vetoed_once_its_longest_pause_would_not_leave_time_for_an_attempt():
    with deadline.answering_within(LambdaContext(3_000)):
        # 2.5 s left: after a throttling answer, a pause of up to 1 s and an attempt fit; up to 2 s does not.
        assert deadline._veto_late_retry(attempts=1) is None
        assert deadline._veto_late_retry(attempts=2) is False


def test_after_a_timeout_the_short_pause_lets_a_retry_use_the_time_left():
    timeout = ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
    with deadline.answering_within(LambdaContext(2_000)):
        # 1.5 s left: too little after throttling (up to 1 s pause), enough after a timeout (50 ms).
        assert deadline._veto_late_retry(attempts=1) is False
        assert deadline._veto_late_retry(attempts=1, caught_exception=timeout) is None
    with deadline.answering_within(LambdaContext(1_500)):
        assert deadline._veto_late_retry(attempts=1, caught_exception=timeout) is False


def test_waits_share_what_is_left():
    with deadline.answering_within(LambdaContext(2_500)):
        assert deadline.io_timeout(3.0, waits=2) == pytest.approx(1.0, abs=0.05)
        assert deadline.io_timeout(0.5) == 0.5
    with deadline.answering_within(LambdaContext(500)):
        with pytest.raises(DeadlineExceeded):
            deadline.io_timeout(3.0)


def test_a_pause_is_allowed_only_with_time_for_one_more_call_after_it():
    with deadline.answering_within(LambdaContext(3_000)):
        assert deadline.check_pause(0.1) == 0.1
        with pytest.raises(DeadlineExceeded):
            deadline.check_pause(2.0)


def test_the_budget_runs_on_the_clock():
    with deadline.answering_within(LambdaContext(ANSWER_MARGIN_SECONDS * 1000 + 1_200)):
        assert not deadline.spent()
        time.sleep(0.2)
        assert deadline.spent()
