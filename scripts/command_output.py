"""What every command prints besides its results: progress lines and errors, tagged with the command's name.

Each line is printed at once (the output may be a pipe read line by line); errors go to standard
error. The stream is looked up at each line, so a redirected sys.stdout (a test's capture) is honoured.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

# The error line for a botocore ClientError or BotoCoreError a command could not get past.
AWS_UNREACHABLE = "AWS refused or could not be reached"


@dataclass(frozen=True)
class CommandOutput:
    """The lines one command prints, each starting with [name]."""

    name: str
    # A command whose standard output is a document (a policy, a trust policy) keeps it for that.
    progress_on_stderr: bool = False

    def progress(self, message: str) -> None:
        """One progress line."""
        print(f"[{self.name}] {message}", file=sys.stderr if self.progress_on_stderr else sys.stdout, flush=True)

    def error(self, message: object) -> None:
        """One error line, on standard error."""
        print(f"[{self.name}] error: {message}", file=sys.stderr, flush=True)
