"""Rules for what clients send: pure functions that accept good input or raise, with no I/O."""

from __future__ import annotations

import json
import re
from typing import Any, TypeGuard

from chalicelib.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from chalicelib.ids import IDEMPOTENCY_KEY, MAX_IDEMPOTENCY_KEY_LENGTH, ORDER_ID, PRODUCT_ID
from chalicelib.models import OrderLineRequest, OrderRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_BODY_BYTES = 16 * 1024
MAX_ORDER_LINES = 50
MAX_QUANTITY = 1_000
MAX_PAGINATION_TOKEN_LENGTH = 512
ORDER_FIELDS = {"items"}
LINE_FIELDS = {"product_id", "quantity"}
# ASCII digits only: str.isdigit() also accepts characters such as "²" that int() refuses.
LIMIT_PATTERN = re.compile(r"[0-9]{1,3}")
# A field name the client chose is repeated in an error message only if it has this shape, and only
# this many of them: markup, control characters or a megabyte of name never come back to the caller.
QUOTABLE_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
MAX_QUOTED_FIELDS = 3


def parse_limit(raw: str | None) -> int:
    """The page size from the limit query parameter: an integer from 1 to 100, default 20."""
    if raw is None:
        return DEFAULT_LIMIT
    if not LIMIT_PATTERN.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    return int(raw)


def parse_next_token(raw: str | None) -> str | None:
    """The next_token query parameter as given, refusing absurd sizes before any decoding."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_PAGINATION_TOKEN_LENGTH:
        raise InvalidRequest("next_token is not valid.")
    return raw


def check_product_id(product_id: str) -> str:
    """Accept a product id only if it has the strict product id shape."""
    if not PRODUCT_ID.fullmatch(product_id or ""):
        raise InvalidRequest("product_id must be 1 to 63 lowercase letters, digits or hyphens.")
    return product_id


def check_order_id(order_id: str) -> str:
    """Accept an order id only if it has the strict order id shape."""
    if not ORDER_ID.fullmatch(order_id or ""):
        raise InvalidRequest("order_id is not a valid order id.")
    return order_id


def check_idempotency_key(raw: str | None) -> str | None:
    """The Idempotency-Key header: absent, or 1 to 128 printable ASCII characters."""
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces."
        )
    return raw


def check_json_content_type(content_type: str | None) -> None:
    """Refuse a body that is not declared as UTF-8 JSON."""
    media_type, _, params = (content_type or "").partition(";")
    if media_type.strip().lower() != "application/json":
        raise UnsupportedMediaType()
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("The request body must be UTF-8 encoded JSON.")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated keys, so {"quantity": 1, "quantity": 1000} would mean
    # whatever the last parser in a chain decides; such a body is refused as ambiguous instead.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DuplicateKeyError("duplicate key")
    return document


def parse_json_body(body: bytes | str | None) -> Any:
    """Decode a JSON body of at most 16 KiB, refusing NaN, Infinity, invalid UTF-8 and repeated keys."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body must be at most {MAX_BODY_BYTES} bytes.")
    try:
        return json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicate_keys
        )
    except DuplicateKeyError:
        raise InvalidRequest("The request body is not valid JSON: an object repeats a key.") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.") from None


def _is_int(value: Any) -> TypeGuard[float]:
    """Whether value is an integer as JSON Schema (the OpenAPI type of quantity) defines one."""
    # JSON Schema's "integer" is any number with a zero fractional part, so 2.0 is one; a
    # client or fuzzer following the published document may send it.
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown_field_problems(where: str, names: set[str], allowed: set[str]) -> list[str]:
    """The problems of the fields outside allowed, naming at most three and only plain identifiers.

    where is the object's place in the body ("" for the body itself, else e.g. "items[0]").
    """
    unknown = names - allowed
    quotable = sorted(name for name in unknown if QUOTABLE_FIELD_NAME.fullmatch(name))[:MAX_QUOTED_FIELDS]
    prefix = f"{where}." if where else ""
    problems = [f"{prefix}{name} is not an allowed field." for name in quotable]
    unnamed = len(unknown) - len(quotable)
    if unnamed:
        fields = "field" if unnamed == 1 else "fields"
        problems.append(
            f"{where or 'The body'} has {unnamed} {'more ' if quotable else ''}{fields} that"
            f" {'is' if unnamed == 1 else 'are'} not allowed (allowed: {', '.join(sorted(allowed))})."
        )
    return problems


def _line_problems(index: int, line: Any) -> list[str]:
    where = f"items[{index}]"
    if not isinstance(line, dict):
        return [f"{where} must be an object with product_id and quantity."]
    problems = _unknown_field_problems(where, set(line), LINE_FIELDS)
    product_id = line.get("product_id")
    if not isinstance(product_id, str) or not PRODUCT_ID.fullmatch(product_id):
        problems.append(f"{where}.product_id must be a product id (lowercase letters, digits, hyphens).")
    quantity = line.get("quantity")
    if not _is_int(quantity) or not 1 <= quantity <= MAX_QUANTITY:
        problems.append(f"{where}.quantity must be an integer from 1 to {MAX_QUANTITY}.")
    return problems


def parse_order_request(document: Any) -> OrderRequest:
    """Validate a decoded POST /orders body and return it as an OrderRequest."""
    if not isinstance(document, dict):
        raise ValidationFailed("The body must be a JSON object with an items list.")
    problems = _unknown_field_problems("", set(document), ORDER_FIELDS)
    items = document.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ORDER_LINES:
        problems.append(f"items must be a list of 1 to {MAX_ORDER_LINES} lines.")
        items = []
    for index, line in enumerate(items):
        problems.extend(_line_problems(index, line))
    product_ids = [line["product_id"] for line in items if isinstance(line, dict) and "product_id" in line]
    # Only well-formed ids are named: a malformed one is reported as such already, without its value.
    duplicates = sorted(
        {
            pid
            for pid in product_ids
            if isinstance(pid, str) and PRODUCT_ID.fullmatch(pid) and product_ids.count(pid) > 1
        }
    )
    if duplicates:
        problems.append(f"each product may appear once; repeated: {', '.join(duplicates)}.")
    if problems:
        raise ValidationFailed(" ".join(problems[:10]))
    return OrderRequest(tuple(OrderLineRequest(line["product_id"], int(line["quantity"])) for line in items))


def page_params(query: dict[str, str] | None) -> tuple[int, str | None]:
    """The limit and next_token of a list request's query string."""
    query = query or {}
    return parse_limit(query.get("limit")), parse_next_token(query.get("next_token"))


def read_order_request(content_type: str | None, body: bytes | str | None) -> OrderRequest:
    """A POST /orders body, checked in order: JSON content type, size, syntax, then rules."""
    check_json_content_type(content_type)
    return parse_order_request(parse_json_body(body))
