"""Print the first Python on this machine that can run LocalStack, for its own virtual environment.

    python -m scripts.local.localstack_python     # prints a path, or nothing (exit 1) when there is none

LocalStack 2026.3.0 imports `warnings.deprecated`, new in Python 3.13, so older interpreters
cannot start it. pyenv's shims answer to `command -v python3.13` even when that version is not
selected and then fail, so every candidate is run before it is chosen.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

MINIMUM = (3, 13)
NAMES = ("python3.13", "python3.14", "python3.15")
PYENV_PATTERN = "versions/3.1[3-9]*/bin/python"


def candidates() -> list[str]:
    """Interpreters worth trying, in order: those on PATH by name, then pyenv's installed versions."""
    found = [path for path in map(shutil.which, NAMES) if path]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(os.path.join(pyenv_root, PYENV_PATTERN)))
    return list(dict.fromkeys(found))


def runs(path: str) -> bool:
    """Whether path starts and is at least MINIMUM."""
    check = f"import sys; sys.exit(sys.version_info[:2] < {MINIMUM!r})"
    try:
        return subprocess.run([path, "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find() -> str | None:
    """The first candidate that runs, or None."""
    return next((path for path in candidates() if runs(path)), None)


def main() -> int:
    """Print the interpreter's path; exit 1 with nothing printed when there is none."""
    path = find()
    if path is None:
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
