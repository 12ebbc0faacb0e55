"""Where a deployed stage's AWS resources are: their names, region, tags and the boto3 clients that reach them."""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from scripts import tenant_access_role
from scripts.stage_config import PROJECT_DIR, StageConfig, StageConfigError, read_stage_config

# https://cognito-idp.{region}.amazonaws.com/{pool_id}: what TOKEN_ISSUER holds once bootstrapped.
ISSUER = re.compile(r"^https://cognito-idp\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<pool_id>[\w-]+_[0-9a-zA-Z]+)$")
LOCAL_STAGE = "local"


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the operator scripts use, all in one region."""

    region: str
    dynamodb: Any
    cognito: Any
    apigateway: Any
    secretsmanager: Any
    sts: Any
    iam: Any

    @classmethod
    def for_region(cls, region: str) -> "AwsClients":
        """Clients for region, with the credentials boto3 finds (environment, profile, role)."""
        import boto3

        # boto3's default session caches the service models, so each client after the first is cheap.
        return cls(
            region=region,
            dynamodb=boto3.client("dynamodb", region_name=region),
            cognito=boto3.client("cognito-idp", region_name=region),
            apigateway=boto3.client("apigateway", region_name=region),
            secretsmanager=boto3.client("secretsmanager", region_name=region),
            sts=boto3.client("sts", region_name=region),
            iam=boto3.client("iam", region_name=region),
        )

    def all(self) -> list[Any]:
        """Every client, for watching the calls they make."""
        return [self.dynamodb, self.cognito, self.apigateway, self.secretsmanager, self.sts, self.iam]


@dataclass(frozen=True)
class StageResources:
    """A stage's settings from .chalice/config.json, and the names of what bootstrap makes for it."""

    config: StageConfig
    project_dir: Path

    @property
    def stage(self) -> str:
        """The Chalice stage name."""
        return self.config.stage

    @property
    def prefix(self) -> str:
        """The prefix of every name: "{app}-{stage}" (the user pool, usage plans and API keys carry it)."""
        return self.config.resource_prefix

    @property
    def config_file(self) -> Path:
        """The .chalice/config.json the stage comes from."""
        return self.project_dir / ".chalice" / "config.json"

    @property
    def table_name(self) -> str:
        """The single table."""
        return self.config.table_name

    @property
    def pool_name(self) -> str:
        """The user pool's name (the local stack names its pool the same way)."""
        return self.prefix

    @property
    def tenant_access_role_name(self) -> str:
        """The role the API function assumes for one tenant at a time (scripts.tenant_access_role)."""
        return tenant_access_role.role_name(self.prefix)

    @property
    def pagination_secret_name(self) -> str:
        """The Secrets Manager secret holding the key that signs pagination tokens."""
        return f"{self.prefix}/pagination"

    def tenant_secret_name(self, tenant_id: str) -> str:
        """The Secrets Manager secret holding a tenant's client id and secret."""
        return f"{self.prefix}/tenants/{tenant_id}"

    def default_domain_prefix(self, account_id: str) -> str:
        """A hosted-domain prefix for the user pool; the account id keeps it unique within the region."""
        return f"{self.prefix}-{account_id}"

    @property
    def tags(self) -> dict[str, str]:
        """Cost-allocation tags: the stage's "tags" setting, always with project and stage."""
        configured = self.config.settings.get("tags") or {}
        return {"project": self.config.app_name, "stage": self.stage, **configured}

    @property
    def policy_file(self) -> Path | None:
        """The stage's IAM policy file, beside its config.json (None when Chalice generates the policy)."""
        name = self.config.settings.get("iam_policy_file")
        return self.project_dir / ".chalice" / name if name else None

    @property
    def deployed_file(self) -> Path:
        """Where `chalice deploy` records what it deployed for the stage."""
        return self.project_dir / ".chalice" / "deployed" / f"{self.stage}.json"

    def deployed_api_url(self) -> str:
        """The URL of the REST API `chalice deploy` recorded for the stage; StageConfigError before a deploy."""
        try:
            deployed = json.loads(self.deployed_file.read_text())
        except FileNotFoundError:
            raise StageConfigError(
                f"no {self.deployed_file}: deploy the stage first (make deploy), or pass --api-url"
            ) from None
        urls = [r["rest_api_url"] for r in deployed.get("resources", []) if r.get("resource_type") == "rest_api"]
        if not urls:
            raise StageConfigError(f"{self.deployed_file} records no REST API; pass --api-url")
        return str(urls[0])

    @property
    def issuer(self) -> str:
        """The configured TOKEN_ISSUER, empty before bootstrap."""
        return self.config.environment.get("TOKEN_ISSUER", "").strip()

    def bootstrapped_pool(self) -> tuple[str, str]:
        """The (region, pool id) TOKEN_ISSUER names; StageConfigError if bootstrap has not run."""
        match = ISSUER.fullmatch(self.issuer)
        if not match:
            raise StageConfigError(
                f"stage {self.stage!r} has no Cognito TOKEN_ISSUER in {self.config_file}; "
                f"run `python -m scripts.deploy.bootstrap --stage {self.stage}` first"
            )
        return match["region"], match["pool_id"]

    def region(self, requested: str | None = None) -> str:
        """The region to work in: the one asked for, else the one bootstrap used, else boto3's.

        Asking for another region than the stage was bootstrapped in is refused: the stage's
        table, pool and secrets live in one region only.
        """
        bootstrapped = None
        if self.issuer:
            with contextlib.suppress(StageConfigError):
                bootstrapped, _ = self.bootstrapped_pool()
        if requested and bootstrapped and requested != bootstrapped:
            raise StageConfigError(
                f"stage {self.stage} was bootstrapped in {bootstrapped} (TOKEN_ISSUER), not {requested}; "
                f"pass --region {bootstrapped}"
            )
        region = requested or bootstrapped or default_region()
        if not region:
            raise StageConfigError("no AWS region: pass --region or set AWS_REGION")
        return region


def load_stage(stage: str, project_dir: Path = PROJECT_DIR) -> StageResources:
    """The stage's resources, from project_dir/.chalice/config.json; the local stage is refused."""
    if stage == LOCAL_STAGE:
        raise StageConfigError("the local stage is provisioned by `make run`, not by the operator scripts")
    project_dir = project_dir.resolve()
    return StageResources(read_stage_config(stage, project_dir / ".chalice" / "config.json"), project_dir)


def issuer_url(region: str, pool_id: str) -> str:
    """The iss claim of the pool's access tokens, and where its JWKS lives."""
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


def token_url(domain_prefix: str, region: str) -> str:
    """The pool's hosted-domain token endpoint."""
    return f"https://{domain_prefix}.auth.{region}.amazoncognito.com/oauth2/token"


def default_region() -> str | None:
    """The region boto3 would use (AWS_REGION, AWS_DEFAULT_REGION, the profile), if any."""
    import boto3

    return boto3.session.Session().region_name


@contextlib.contextmanager
def application_settings(resources: StageResources, region: str) -> Iterator[None]:
    """chalicelib's settings pointed at the stage's table in region while the block runs.

    The registry and repositories read their table and region from the environment (as the
    deployed functions do), so the scripts set it for them and put the previous one back after.
    """
    values = {
        **resources.config.environment,
        "TABLE_NAME": resources.table_name,
        # The settings insist on an issuer and a pagination secret the registry itself never uses.
        "TOKEN_ISSUER": resources.issuer or "https://issuer.invalid",
        "PAGINATION_SECRET_ARN": resources.config.environment.get("PAGINATION_SECRET_ARN") or "unused",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    _reset_application_caches()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_application_caches()


def _reset_application_caches() -> None:
    from chalicelib.process_caches import reset_process_caches
    from chalicelib.store import dynamodb

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    # The DynamoDB client is cached for the process; only one made for another region must go.
    made = dynamodb.dynamodb_client.cache_info().currsize
    reset_process_caches(keep_dynamodb_client=bool(made) and dynamodb.dynamodb_client().meta.region_name == region)
