"""A Chalice stage's settings from .chalice/config.json, read and updated in one place."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config import DEFAULT_RESOURCE_SERVER
from scripts.monitoring import Deployment

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_FILE = PROJECT_DIR / ".chalice" / "config.json"
# Chalice fetches the functions' aarch64 wheels by name==version, outside requirements.txt: with the
# runtime lock as pip's constraints file, pip checks those downloads against its hashes too.
LOCKED_PACKAGING = {"PIP_CONSTRAINT": str(PROJECT_DIR / "requirements.txt")}
# Stages whose table and user pool must survive a mistaken delete or destroy.
PROTECTED_STAGES = ("prod",)


class StageConfigError(Exception):
    """The stage is missing from .chalice/config.json or lacks a setting it needs."""


@dataclass(frozen=True)
class StageConfig:
    """What the scripts need to know of one stage."""

    stage: str
    app_name: str
    api_gateway_stage: str
    environment: dict[str, str]
    settings: dict[str, Any]

    @property
    def table_name(self) -> str:
        """The table the stage's application uses."""
        try:
            return self.environment["TABLE_NAME"]
        except KeyError:
            raise StageConfigError(f"stage {self.stage!r} has no TABLE_NAME") from None

    @property
    def resource_server_id(self) -> str:
        """The Cognito resource server whose scopes the application checks."""
        return self.environment.get("RESOURCE_SERVER_ID", DEFAULT_RESOURCE_SERVER)

    @property
    def resource_prefix(self) -> str:
        """The prefix of the names of the stage's user pool, usage plans, API keys and secrets."""
        return f"{self.app_name}-{self.stage}"

    @property
    def access_token_minutes(self) -> int:
        """How long the stage's access tokens last ("access_token_minutes"; Cognito allows 5 to 1,440).

        Longer tokens mean fewer billed token requests and a longer reach for a leaked or revoked
        one (README "Token lifetime").
        """
        from scripts.provision import ACCESS_TOKEN_MINUTES, ACCESS_TOKEN_MINUTES_RANGE

        value = self.settings.get("access_token_minutes", ACCESS_TOKEN_MINUTES)
        low, high = ACCESS_TOKEN_MINUTES_RANGE
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise StageConfigError(
                f"stage {self.stage!r}: access_token_minutes must be a whole number from {low} to {high}, not {value!r}"
            )
        return value

    @property
    def store_tenant_secrets(self) -> bool:
        """Whether `tenants` keeps a copy of each tenant's client secret in Secrets Manager ("store_tenant_secrets").

        Off by default: Cognito returns an app client's secret to an operator allowed to read it,
        so the copy ($0.40 a tenant a month) is only for systems that fetch it from Secrets Manager.
        """
        value = self.settings.get("store_tenant_secrets", False)
        if not isinstance(value, bool):
            raise StageConfigError(f"stage {self.stage!r}: store_tenant_secrets must be true or false, not {value!r}")
        return value

    @property
    def tracing(self) -> dict[str, Any]:
        """The X-Ray sampling rule's size: "xray_traced_share" (0 to 1) after "xray_reservoir_per_second".

        Given as the keyword arguments of scripts.monitoring.Deployment.
        """
        share = self.settings.get("xray_traced_share", 0.05)
        reservoir = self.settings.get("xray_reservoir_per_second", 0)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise StageConfigError(f"stage {self.stage!r}: xray_traced_share must be from 0 to 1, not {share!r}")
        if isinstance(reservoir, bool) or not isinstance(reservoir, int) or reservoir < 0:
            raise StageConfigError(
                f"stage {self.stage!r}: xray_reservoir_per_second must be a whole number, 0 or more, not {reservoir!r}"
            )
        return {"traced_share": float(share), "trace_reservoir_per_second": reservoir}

    def deployment(self, region: str) -> Deployment:
        """What the stage's dashboard, alarms and sampling rule describe, in region."""
        return Deployment(
            app_name=self.app_name,
            stage=self.stage,
            region=region,
            table_name=self.table_name,
            api_stage=self.api_gateway_stage,
            **self.tracing,
        )

    @property
    def policy_file(self) -> Path | None:
        """The stage's IAM policy file, when it does not let Chalice generate one."""
        name = self.settings.get("iam_policy_file")
        return PROJECT_DIR / ".chalice" / name if name else None


def read_stage_config(stage: str, config_file: Path = CONFIG_FILE) -> StageConfig:
    """The stage's settings as Chalice resolves them (stage values win over top-level ones)."""
    config = json.loads(config_file.read_text())
    stage_config = config.get("stages", {}).get(stage)
    if stage_config is None:
        raise StageConfigError(f"{config_file} has no {stage!r} stage")
    environment = {**config.get("environment_variables", {}), **stage_config.get("environment_variables", {})}
    settings = {key: value for key, value in config.items() if key not in ("stages", "environment_variables")}
    settings.update({key: value for key, value in stage_config.items() if key != "environment_variables"})
    return StageConfig(
        stage=stage,
        app_name=config["app_name"],
        api_gateway_stage=settings.get("api_gateway_stage", "api"),
        environment=environment,
        settings=settings,
    )


def update_stage_environment(stage: str, values: dict[str, str], config_file: Path = CONFIG_FILE) -> bool:
    """Write environment variables into the stage's section; True if anything changed.

    The file is replaced atomically so an interrupted write never leaves it half written.
    """
    config = json.loads(config_file.read_text())
    stage_config = config.get("stages", {}).get(stage)
    if stage_config is None:
        raise StageConfigError(f"{config_file} has no {stage!r} stage")
    environment = stage_config.setdefault("environment_variables", {})
    changed = any(environment.get(name) != value for name, value in values.items())
    if changed:
        environment.update(values)
        temporary = config_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(temporary, config_file)
    return changed
