"""Small helpers for boto3 calls that every operator script makes the same way."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError


def error_code(error: ClientError) -> str:
    """The AWS error code of a failed call ("" if the answer named none)."""
    return error.response.get("Error", {}).get("Code", "")


def paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paginated listing."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(result_key, [])


def paginate_by_token(
    call: Callable[..., dict[str, Any]], result_key: str, token: str = "NextToken", **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every item of a listing boto3 has no paginator for, following its next-page token."""
    while True:
        page = call(**kwargs)
        yield from page.get(result_key, [])
        if not page.get(token):
            return
        kwargs = {**kwargs, token: page[token]}


def endpoint_lacks(error: Exception) -> bool:
    """Whether error says the endpoint does not implement the operation, rather than that the call failed.

    AWS names every error with a code; an answer without one (botocore then reports the bare
    HTTP status as the code) comes from an endpoint that has no such operation, as moto server
    answers 500 or 404. In-process moto raises NotImplementedError from the call itself.
    """
    if isinstance(error, NotImplementedError):
        return True
    return isinstance(error, ClientError) and error_code(error) in ("404", "500", "501")


def lack_detail(error: Exception) -> str:
    """What an endpoint_lacks error says, for the report line."""
    if isinstance(error, ClientError):
        return f"{error.operation_name} answered HTTP {error_code(error)}"
    return str(error)
