"""Records every call a boto3 DynamoDB client makes, with images of the items each write touches, for pricing."""

from __future__ import annotations

import copy
import threading
from typing import Any, Mapping

from scripts.measure.dynamodb_units import Item, ItemId, RecordedCall, TableShape, item_id, touched_items


class CallRecorder:
    """Attaches to a boto3 DynamoDB client through its event system and keeps a RecordedCall per call.

    The images of the items a write touches are read with image_client, a second client that is not
    recorded, by a strongly consistent GetItem just before the call and again just after it. A call
    is recorded when its answer arrives, so calls made from several threads at once are recorded in
    the order they finished. Images are exact only while no other writer changes the same items.
    """

    def __init__(self, client: Any, image_client: Any, shapes: Mapping[str, TableShape]):
        if image_client is client:
            raise ValueError("image_client must be another client: its own reads would be recorded")
        self._client = client
        self._image_client = image_client
        self._shapes = dict(shapes)
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        # Where a call's state waits between its two events: inside botocore's own per-call context
        # dict, under a name of this recorder's, so parallel calls never share it.
        self._context_key = f"{__name__}.{id(self)}"
        self._hooks = (
            ("before-parameter-build.dynamodb", self._before_call),
            ("after-call.dynamodb", self._after_call),
            ("after-call-error.dynamodb", self._after_call_error),
        )

    def start(self) -> None:
        """Begin recording the client's calls."""
        for event, handler in self._hooks:
            # Last, so that parameters and answers are seen as other handlers leave them (boto3's
            # resource layer, for one, turns Python values into typed JSON in before-parameter-build).
            self._client.meta.events.register_last(event, handler, unique_id=self._unique_id(event))

    def stop(self) -> None:
        """Stop recording; the calls recorded so far are kept."""
        for event, handler in self._hooks:
            self._client.meta.events.unregister(event, handler, unique_id=self._unique_id(event))

    def _unique_id(self, event: str) -> str:
        # Registering twice under one unique id is a no-op, so start() twice does not record twice.
        return f"{self._context_key}.{event}"

    def __enter__(self) -> CallRecorder:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def calls(self) -> list[RecordedCall]:
        """The calls recorded so far, oldest first (a copy)."""
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        with self._lock:
            self._calls.clear()

    # --- botocore event handlers ------------------------------------------------------------

    def _before_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        operation = model.name
        # A copy: the caller may reuse or change its dicts after the call.
        params = copy.deepcopy(params)
        touched = touched_items(operation, params, self._shapes)
        context[self._context_key] = (operation, params, touched, self._images(touched))

    def _after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **kwargs: Any) -> None:
        http_response = kwargs.get("http_response")
        failed = http_response is not None and http_response.status_code >= 300
        # botocore itself raises the override's error class when a handler set one.
        code = context.get("error_code_override") or (parsed.get("Error") or {}).get("Code") or "UnknownError"
        error_code = code if failed else None
        self._record(context, copy.deepcopy(parsed), error_code)

    def _after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        # No answer came back (the connection failed, or retries ran out on one): the call's
        # effect is unknown, and the after-images say what it was.
        self._record(context, {}, type(exception).__name__)

    def _record(self, context: dict[str, Any], response: dict[str, Any], error_code: str | None) -> None:
        pending = context.pop(self._context_key, None)
        if pending is None:
            # The call began before start(): its parameters were never seen.
            return
        operation, params, touched, before = pending
        call = RecordedCall(operation, params, response, error_code, before, self._images(touched))
        with self._lock:
            self._calls.append(call)

    def _images(self, touched: list[tuple[str, Item]]) -> dict[ItemId, Item | None]:
        """The whole current item (None if there is none) for each (table, key), read strongly consistent."""
        images: dict[ItemId, Item | None] = {}
        for table, key in touched:
            answer = self._image_client.get_item(TableName=table, Key=key, ConsistentRead=True)
            images[item_id(table, key)] = answer.get("Item")
        return images
