"""Schemathesis hooks for tests/e2e/test_schemathesis.py: the check that narrows which valid requests may be refused.

A fuzzer's schema-valid data can still name things that do not exist: a next_token matching the token
format that this API never signed, a product id that is not in the tenant's catalog, an Idempotency-Key
used before with another body, or two lines of the same product (a rule JSON Schema cannot express).
The run lets positive_data_acceptance accept 400 on the lists and 422 on POST /orders for those, and
this check makes sure that such a refusal names exactly that reason and that the request had it.
"""

from __future__ import annotations

from typing import Any

import schemathesis

LISTS = {"/catalog", "/orders"}


def _error_code(response: Any) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _repeats_a_product(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return False
    ids = [line.get("product_id") for line in body["items"] if isinstance(line, dict)]
    return len(ids) != len(set(map(repr, ids)))


def _documented_reason(case: Any, status: int, code: str | None) -> bool:
    headers = {name.lower(): value for name, value in (case.headers or {}).items()}
    if status == 400 and case.method == "GET" and case.path in LISTS:
        return code == "invalid_pagination_token" and bool((case.query or {}).get("next_token"))
    if status == 422 and case.method == "POST" and case.path == "/orders":
        if code == "unknown_product":
            return True
        if code == "idempotency_key_reused":
            return "idempotency-key" in headers
        if code == "validation_error":
            return _repeats_a_product(case.body)
    return False


@schemathesis.check
def valid_data_refused_only_for_unknown_references(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request answered 400 or 422 must be refused for a documented reason it really has."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    code = _error_code(response)
    if not _documented_reason(case, response.status_code, code):
        raise AssertionError(
            f"schema-valid {case.method} {case.path} refused with {response.status_code} {code!r}, "
            "which is not a documented refusal of well-formed data"
        )
    return None
