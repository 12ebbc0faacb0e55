"""Write the stage's operator policy (scripts.deploy.operator_permissions) to policies/operator-<stage>.json: `python -m scripts.deploy.operator_policy --stage dev`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scripts.command_output import CommandOutput
from scripts.deploy.operator_permissions import operator_policy
from scripts.stage_config import PROJECT_DIR, StageConfigError

OUTPUT = CommandOutput("operator_policy", progress_on_stderr=True)


def policy_path(project_dir: Path, stage: str) -> Path:
    """Where the stage's operator policy is kept in the repository."""
    return project_dir / "policies" / f"operator-{stage}.json"


def render(document: dict[str, Any]) -> str:
    """The policy as it is written to its file."""
    return json.dumps(document, indent=2) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.operator_policy",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Create it with `aws iam create-policy --policy-document file://policies/operator-STAGE.json` "
        "and attach it to the role or user that deploys the stage.",
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage (dev, prod)")
    parser.add_argument("--write", action="store_true", help="write policies/operator-STAGE.json instead of printing")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help="the project (default: this one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print (or write) the stage's operator policy; 0 on success, 1 with a message on failure."""
    args = parse_args(argv)
    try:
        text = render(operator_policy(args.project_dir, args.stage))
    except StageConfigError as error:
        OUTPUT.error(error)
        return 1
    if args.write:
        path = policy_path(args.project_dir, args.stage)
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        OUTPUT.progress(f"wrote {path.relative_to(args.project_dir)}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
