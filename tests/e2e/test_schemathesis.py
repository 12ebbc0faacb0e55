"""Schemathesis against the running local stack, from the stack's own /openapi.json: no failure in any phase.

The stack is this module's own (the stack fixture starts one per module), so the orders the run places
and the stock it takes touch no other test. Schemathesis runs as its CLI, in a subprocess, with a fixed
configuration: deterministic generation, one worker, no example database, a premium tenant's token (its
rate limit is far above what the run sends).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scripts.docs import openapi_document
from tests.e2e import schemathesis_hooks
from tests.support.stack import HTTP_TIMEOUT_SECONDS, RunningStack

pytestmark = pytest.mark.e2e

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    # The documented headers (Retry-After, Location, Idempotent-Replayed) and a placed order readable at once.
    "response_headers_conformance",
    "ensure_resource_availability",
    # From HOOKS: narrows the two refusals below to the reasons the document gives for them.
    "valid_data_refused_only_for_unknown_references",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Per operation in the fuzzing phase and per rule in the stateful one: about 750 requests in all
# (coverage and examples add a fixed ~190), about a minute on a 2-core machine.
MAX_EXAMPLES = 50
RUN_TIMEOUT_SECONDS = 300
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# Schemathesis's default for positive_data_acceptance. Schema-valid data may still name something that
# does not exist: a next_token this API never signed is a 400 on the lists, a product outside the
# tenant's catalog (or a reused Idempotency-Key, or a repeated product) a 422 on POST /orders.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
ACCEPTED_BY_OPERATION = {("listProducts", "listOrders"): [*ACCEPTED, "400"], ("placeOrder",): [*ACCEPTED, "422"]}


def _toml_string(value: str) -> str:
    # A JSON string of printable ASCII is a valid TOML basic string.
    assert value.isascii() and value.isprintable(), value
    return json.dumps(value)


def write_config(path: Path, token: str) -> Path:
    """The schemathesis.toml of the run (it holds the bearer token, so only the owner may read it)."""
    lines = [
        f"hooks = {_toml_string(str(HOOKS))}",
        "workers = 1",
        "",
        "[headers]",
        f"Authorization = {_toml_string('Bearer ' + token)}",
        "",
        "[generation]",
        "deterministic = true",
        'database = "none"',
        f"max-examples = {MAX_EXAMPLES}",
    ]
    for operation_ids, statuses in ACCEPTED_BY_OPERATION.items():
        lines += [
            "",
            "[[operations]]",
            f"include-operation-id = {json.dumps(list(operation_ids))}",
            f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}",
        ]
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_schemathesis(stack: RunningStack, workdir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run `st run` against the stack's /openapi.json; returns the process and its report directory."""
    config = write_config(workdir / "schemathesis.toml", stack.token("premium"))
    reports = workdir / "reports"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        ",".join(PHASES),
        "--report",
        "json,ndjson",
        "--report-dir",
        str(reports),
        "--no-color",
    ]
    # Loopback only, whatever proxy the environment names.
    env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    completed = subprocess.run(
        command,
        cwd=workdir,
        env={**env, "NO_PROXY": "127.0.0.1,localhost"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    return completed, reports


def read_events(reports: Path) -> list[dict[str, Any]]:
    """The run's NDJSON events, one dict per line."""
    (events_file,) = reports.glob("ndjson-*.ndjson")
    return [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]


def cases_per_phase(events: list[dict[str, Any]]) -> dict[str, int]:
    """How many test cases each phase sent."""
    counts: collections.Counter[str] = collections.Counter()
    for event in events:
        finished = event.get("ScenarioFinished")
        if finished:
            counts[finished["phase"]] += len(finished["recorder"].get("cases", {}))
    return dict(counts)


def check_outcomes(events: list[dict[str, Any]]) -> collections.Counter[tuple[str, str]]:
    """How often each check passed or failed."""
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    for event in events:
        finished = event.get("ScenarioFinished")
        for results in (finished or {}).get("recorder", {}).get("checks", {}).values():
            outcomes.update((result["name"], result["status"]) for result in results)
    return outcomes


def test_schemathesis_finds_no_failure_in_any_phase(stack: RunningStack, tmp_path: Path) -> None:
    completed, reports = run_schemathesis(stack, tmp_path)
    output = completed.stdout + completed.stderr
    (report_file,) = reports.glob("json-*.json")
    report = json.loads(report_file.read_text())
    events = read_events(reports)
    phases = cases_per_phase(events)
    print(
        f"schemathesis {report['schemathesis_version']}: {report['operations']['tested']} operations, "
        f"{report['test_cases']['generated']} test cases {phases}, "
        f"{report['test_cases']['unique_failures']} failures, {report['running_time']:.1f} s"
    )
    assert completed.returncode == 0, output[-20000:]
    assert report["failures"] == [] and report["errors"] == [], output[-20000:]
    # Every operation but GET /openapi.json, which schemathesis leaves out as the document it loaded.
    assert report["operations"]["tested"] == report["operations"]["total"] == 6
    assert {name: phase["status"] for name, phase in report["phases"].items()} == dict.fromkeys(PHASES, "success")
    assert all(phases.get(phase, 0) > 0 for phase in PHASES), phases
    # Every check really judged responses, the narrowing one included.
    outcomes = check_outcomes(events)
    assert all(outcomes[(check, "success")] > 0 for check in CHECKS), outcomes
    assert not [key for key in outcomes if key[1] == "failure"], outcomes
    # The document's links took the stateful phase from one operation's answer to the next.
    stateful = next(event["PhaseStarted"] for event in events if event.get("PhaseStarted", {}).get("payload"))
    declared = stateful["payload"]["transitions_total"] - stateful["payload"]["inferred_transitions"]
    assert declared == 7 and stateful["payload"]["transitions_selected"] == stateful["payload"]["transitions_total"]
    # The one warning allowed: positive cases of a list that all carried a generated next_token were all
    # refused (400 invalid_pagination_token, which the run accepts and the narrowing check confirms).
    warnings = {name: set(found) for name, found in report["warnings"].items() if found}
    assert warnings.keys() <= {"validation_mismatch"}, warnings
    assert warnings.get("validation_mismatch", set()) <= {"GET /catalog", "GET /orders"}, warnings


def test_the_served_document_names_the_stacks_own_addresses(stack: RunningStack, tmp_path: Path) -> None:
    served = stack.http.get(f"{stack.api_url}/openapi.json", timeout=HTTP_TIMEOUT_SECONDS).json()
    assert [server["url"] for server in served["servers"]] == [stack.api_url]
    flow = served["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == stack.info["token_url"]
    # What `make docs` renders for the local stage is what the stack serves.
    out = tmp_path / "openapi.json"
    assert openapi_document.main(["--state-dir", str(stack.state_dir), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == served


class FakeResponse:
    """Just what the narrowing check reads of a response."""

    def __init__(self, status_code: int, code: str):
        self.status_code = status_code
        self._body = {"error": {"code": code, "message": "..."}, "request_id": "r"}

    def json(self) -> dict[str, Any]:
        """The error envelope."""
        return self._body


def positive_case(method: str, path: str, **parts: Any) -> SimpleNamespace:
    """A schema-valid case as schemathesis hands it to a check."""
    meta = SimpleNamespace(generation=SimpleNamespace(mode=SimpleNamespace(is_positive=True)))
    return SimpleNamespace(method=method, path=path, meta=meta, **{"headers": {}, "query": {}, "body": None, **parts})


LINE = {"product_id": "prod-001", "quantity": 1}


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        (positive_case("GET", "/catalog", query={"next_token": "a.b"}), 400, "invalid_pagination_token"),
        (positive_case("POST", "/orders", body={"items": [LINE]}), 422, "unknown_product"),
        (positive_case("POST", "/orders", headers={"Idempotency-Key": "k"}), 422, "idempotency_key_reused"),
        (positive_case("POST", "/orders", body={"items": [LINE, {**LINE, "quantity": 2}]}), 422, "validation_error"),
    ],
    ids=["unsigned-token", "unknown-product", "reused-key", "repeated-product"],
)
def test_the_narrowing_check_lets_documented_refusals_pass(case: SimpleNamespace, status: int, code: str) -> None:
    assert (
        schemathesis_hooks.valid_data_refused_only_for_unknown_references(None, FakeResponse(status, code), case)
        is None
    )


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        (positive_case("GET", "/catalog"), 400, "invalid_pagination_token"),
        (positive_case("GET", "/orders", query={"next_token": "a.b"}), 400, "invalid_request"),
        (positive_case("POST", "/orders", body={"items": [{**LINE, "quantity": 2.0}]}), 422, "validation_error"),
        (positive_case("POST", "/orders"), 422, "idempotency_key_reused"),
        (positive_case("GET", "/catalog/{product_id}"), 400, "invalid_request"),
    ],
    ids=["token-not-sent", "malformed-token", "integral-decimal", "key-not-sent", "valid-product-id"],
)
def test_the_narrowing_check_fails_other_refusals_of_valid_data(case: SimpleNamespace, status: int, code: str) -> None:
    with pytest.raises(AssertionError, match="not a documented refusal"):
        schemathesis_hooks.valid_data_refused_only_for_unknown_references(None, FakeResponse(status, code), case)
