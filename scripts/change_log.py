"""Which create, update and delete calls boto3 clients make, so a run can say what it changed (or would)."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

# Operation names that change something; everything else (Describe, Get, List) only reads.
MUTATING_PREFIXES = (
    "Create",
    "Update",
    "Delete",
    "Put",
    "Tag",
    "Untag",
    "Restore",
    "TransactWrite",
    "BatchWrite",
    "Add",
    "Remove",
    "Attach",
    "Detach",
    "Enable",
    "Disable",
    "Subscribe",
    "Unsubscribe",
)

_ids = itertools.count()


@dataclass(frozen=True)
class Change:
    """One changing call: its operation and the parameters it was called with."""

    operation: str
    params: dict[str, Any]

    @property
    def creates(self) -> bool:
        """Whether the call makes a new resource (rather than changing or removing one)."""
        return self.operation.startswith("Create")

    def names(self, value: str) -> bool:
        """Whether one of the call's parameters is value, or an ARN or path that ends with it."""
        return any(
            isinstance(param, str) and (param == value or param.endswith((f"/{value}", f":{value}")))
            for param in self.params.values()
        )


class WouldChange(Exception):
    """A dry run reached a call that would change something; nothing was sent."""

    def __init__(self, change: Change):
        super().__init__(change.operation)
        self.change = change
        self.operation = change.operation


def is_mutating(operation: str) -> bool:
    """Whether an API operation name changes something."""
    return operation.startswith(MUTATING_PREFIXES)


class ChangeLog:
    """Records the changing calls of the clients it watches; in a dry run it stops them before they are sent."""

    def __init__(self, dry_run: bool = False):
        self.dry_run = dry_run
        self.changes: list[Change] = []
        self._unique_id = f"change-log-{next(_ids)}"

    @property
    def operations(self) -> list[str]:
        """The changing operations called so far, in order."""
        return [change.operation for change in self.changes]

    def _before_parameter_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        # Here, rather than at before-call, the parameters are still the ones the call was given.
        if not is_mutating(model.name):
            return
        change = Change(model.name, dict(params))
        if self.dry_run:
            raise WouldChange(change)
        self.changes.append(change)

    @contextlib.contextmanager
    def watching(self, clients: Iterable[Any]) -> Iterator["ChangeLog"]:
        """Watch clients while the block runs."""
        watched = list(clients)
        for client in watched:
            client.meta.events.register(
                "before-parameter-build", self._before_parameter_build, unique_id=self._unique_id
            )
        try:
            yield self
        finally:
            for client in watched:
                client.meta.events.unregister("before-parameter-build", unique_id=self._unique_id)

    def mark(self) -> int:
        """A position to ask since() about later."""
        return len(self.changes)

    def changes_since(self, mark: int) -> list[Change]:
        """The changing calls made after mark, in order."""
        return self.changes[mark:]

    def since(self, mark: int) -> list[str]:
        """The changing operations called after mark, each once, in order."""
        return list(dict.fromkeys(change.operation for change in self.changes_since(mark)))
