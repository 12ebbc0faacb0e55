"""Which create, update and delete calls boto3 clients make, so a run can say what it changed (or would)."""

from __future__ import annotations

import contextlib
import itertools
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
)

_ids = itertools.count()


class WouldChange(Exception):
    """A dry run reached a call that would change something; nothing was sent."""

    def __init__(self, operation: str):
        super().__init__(operation)
        self.operation = operation


def is_mutating(operation: str) -> bool:
    """Whether an API operation name changes something."""
    return operation.startswith(MUTATING_PREFIXES)


class ChangeLog:
    """Records the changing calls of the clients it watches; in a dry run it stops them before they are sent."""

    def __init__(self, dry_run: bool = False):
        self.dry_run = dry_run
        self.operations: list[str] = []
        self._unique_id = f"change-log-{next(_ids)}"

    def _before_call(self, model: Any, **_: Any) -> None:
        if not is_mutating(model.name):
            return
        if self.dry_run:
            raise WouldChange(model.name)
        self.operations.append(model.name)

    @contextlib.contextmanager
    def watching(self, clients: Iterable[Any]) -> Iterator["ChangeLog"]:
        """Watch clients while the block runs."""
        watched = list(clients)
        for client in watched:
            client.meta.events.register("before-call", self._before_call, unique_id=self._unique_id)
        try:
            yield self
        finally:
            for client in watched:
                client.meta.events.unregister("before-call", unique_id=self._unique_id)

    def mark(self) -> int:
        """A position to ask since() about later."""
        return len(self.operations)

    def since(self, mark: int) -> list[str]:
        """The changing operations called after mark, each once, in order."""
        return list(dict.fromkeys(self.operations[mark:]))
