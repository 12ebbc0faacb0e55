"""Figures from snippets run in fresh interpreters: how the benchmarks measure cold starts."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(snippet: str, environment: dict[str, str]) -> dict[str, float]:
    """Run a snippet in a fresh interpreter and return the figures it printed on its last line."""
    output = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, env=environment, capture_output=True, text=True)
    if output.returncode != 0:
        # The app logs a failed request's error to stdout, the snippet's traceback goes to stderr: show both.
        tail = "\n".join((output.stdout.strip().splitlines() + output.stderr.strip().splitlines())[-12:])
        raise RuntimeError(f"benchmark snippet failed (exit {output.returncode}):\n{tail}")
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """Median of each figure over several samples."""
    return {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}
