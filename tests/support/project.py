"""The project's directory and its Chalice stages' settings, as tests change them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]


def set_stage_settings(project: Path, stage: str, **settings: Any) -> None:
    """Set (or, given None, remove) settings of one stage in the project's .chalice/config.json."""
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    for name, value in settings.items():
        if value is None:
            config["stages"][stage].pop(name, None)
        else:
            config["stages"][stage][name] = value
    path.write_text(json.dumps(config, indent=2))


def keep_tenant_secrets(project: Path, *stages: str) -> None:
    """Make the project's stages keep a copy of each tenant's client secret in Secrets Manager."""
    for stage in stages:
        set_stage_settings(project, stage, store_tenant_secrets=True)
