"""Records every AWS operation any boto3 client of this process makes, for deriving the IAM permissions code needs."""

from __future__ import annotations

import contextlib
import copy
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from unittest import mock

from botocore.client import BaseClient


@dataclass(frozen=True)
class Operation:
    """One AWS API call as the client sent it: service, operation name, parameters and region."""

    service: str
    name: str
    params: dict[str, Any]
    region: str
    # Who made the call, as the recorder's caller labelled the code running at the time.
    made_by: str = ""
    # The modules of the Python frames that led to the call, innermost first.
    callers: tuple[str, ...] = ()

    def called_from(self, package: str) -> bool:
        """Whether code of the package (e.g. "scripts") is among the callers."""
        return any(module == package or module.startswith(package + ".") for module in self.callers)


class OperationRecorder:
    """Wraps botocore's one entry point for API calls, so clients made before or after start() are all seen.

    The call goes through unchanged; its parameters are copied when it is made (failed calls
    too: a refused call still needed its permission). A label set with `acting_as` names which
    code is running; it holds for every thread, so the calls of worker threads that code starts
    count as its own (the code under test must run one labelled part at a time).
    """

    def __init__(self) -> None:
        self._operations: list[Operation] = []
        self._lock = threading.Lock()
        self._label = ""
        self._patch: Any = None

    def start(self) -> None:
        """Begin recording."""
        original: Callable[..., Any] = BaseClient._make_api_call
        recorder = self

        def recording(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            recorder._record(client, operation_name, api_params)
            return original(client, operation_name, api_params)

        self._patch = mock.patch.object(BaseClient, "_make_api_call", recording)
        self._patch.start()

    def stop(self) -> None:
        """Stop recording; what was recorded is kept."""
        if self._patch is not None:
            self._patch.stop()
            self._patch = None

    def __enter__(self) -> OperationRecorder:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def acting_as(self, label: str) -> Iterator[None]:
        """A context in which every call is labelled `label`."""
        previous, self._label = self._label, label
        try:
            yield
        finally:
            self._label = previous

    @property
    def operations(self) -> list[Operation]:
        """Every operation recorded so far, in the order they were made (a copy)."""
        with self._lock:
            return list(self._operations)

    def _record(self, client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> None:
        operation = Operation(
            service=client.meta.service_model.service_name,
            name=operation_name,
            params=_copied(api_params),
            region=client.meta.region_name or "",
            made_by=self._label,
            callers=_caller_modules(),
        )
        with self._lock:
            self._operations.append(operation)


def _caller_modules() -> tuple[str, ...]:
    modules = []
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != __name__ and (not modules or modules[-1] != name):
            modules.append(name)
        frame = frame.f_back
    return tuple(modules)


def _copied(params: dict[str, Any]) -> dict[str, Any]:
    # A copy, since the caller may change its dicts after the call; a body that cannot be copied
    # (an open stream) is kept as it is, its value being of no use to IAM anyway.
    try:
        return copy.deepcopy(params)
    except (TypeError, copy.Error):
        return dict(params)
