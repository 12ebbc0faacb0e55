"""The one-line-per-resource progress report shared by the operator scripts that change a stage."""

from __future__ import annotations

from typing import Callable, Iterable


class ResourceReport:
    """Prints one line per resource as it is handled, and counts the outcomes.

    statuses lists every outcome in the order the summary names them; changes are those that
    alter the account, shown as "would be ..." in a dry run.
    """

    def __init__(
        self,
        statuses: Iterable[str],
        changes: Iterable[str],
        dry_run: bool = False,
        write: Callable[[str], None] | None = None,
        prefix: str = "",
    ):
        self.statuses = tuple(statuses)
        self.change_statuses = tuple(changes)
        self.dry_run = dry_run
        self._write = write or (lambda line: print(line, flush=True))
        self._prefix = prefix
        self.counts: dict[str, int] = {}

    def record(self, status: str, what: str, detail: str = "") -> None:
        """Print the outcome for one resource and count it."""
        self.counts[status] = self.counts.get(status, 0) + 1
        self._write(f"{self._prefix}{self.shown(status)}: {what}" + (f" ({detail})" if detail else ""))

    def shown(self, status: str) -> str:
        """The status as printed: "would be ..." for a change in a dry run."""
        return f"would be {status}" if self.dry_run and status in self.change_statuses else status

    def count(self, *statuses: str) -> int:
        """How many resources ended in any of statuses."""
        return sum(self.counts.get(status, 0) for status in statuses)

    @property
    def changes(self) -> int:
        """How many resources were (or in a dry run would be) changed."""
        return self.count(*self.change_statuses)

    def counts_line(self) -> str:
        """The counts, in the order of statuses."""
        return ", ".join(f"{self.counts[s]} {self.shown(s)}" for s in self.statuses if s in self.counts)
