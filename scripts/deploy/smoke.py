"""Walk a stage over HTTP as tenants would, printing PASS, FAIL or SKIP per step; non-zero exit on any failure.

The steps: health, a token from the token endpoint, the catalog, an order, reading it back,
another tenant getting 404 for it, and a basic-tier tenant getting 429 once its burst is spent;
then, for a deployed stage only, IAM's policy simulator judging the tenant-access role's policy
(scripts.deploy.policy_simulation): the tenant's own keys allowed, the other tenant's denied.
The target is given directly (URLs and credentials), by --stack-file for the local stack, or by
--stage for a deployed stage (URLs from .chalice/, credentials from the tenants' Cognito app clients).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from scripts.command_output import CommandOutput
from scripts.loopback import opener_for
from scripts.stage_config import PROJECT_DIR, StageConfigError

OUTPUT = CommandOutput("smoke")

HTTP_TIMEOUT_SECONDS = 10.0
# Enough to spend a basic tenant's burst of 20 several times over, even as the bucket refills.
RATE_LIMIT_MAX_REQUESTS = 300
RATE_LIMIT_WORKERS = 10
DEMO_TENANTS = {"tenant": "tenant-standard", "other": "tenant-premium", "basic": "tenant-basic"}
POLICY_STEP = "tenant policy"
# The local stack's IAM is moto's, whose SimulatePrincipalPolicy answers only "not implemented".
LOCAL_STACK_HAS_NO_SIMULATOR = (
    "IAM's policy simulator is not available on the local stack: moto does not implement "
    "SimulatePrincipalPolicy; the check runs with --stage against a deployed stage"
)
POLICY_NEEDS_STAGE = "needs --stage: IAM's policy simulator is asked about a deployed stage's role and table"


class SmokeError(Exception):
    """The smoke test cannot start: its target is missing or incomplete."""


class StepFailed(Exception):
    """A step saw something other than what the API promises."""


class StepSkipped(Exception):
    """A step cannot run: it needs credentials or a result that is not there."""


@dataclass(frozen=True)
class ClientCredentials:
    """An app client's id and secret, and a label to name it by (never the secret)."""

    label: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class PolicyTarget:
    """A deployed stage's tenant-access role and table, and the two tenants the simulator is asked about."""

    stage: str
    region: str
    table_name: str
    role_arn: str
    tenant: str
    other_tenant: str | None


@dataclass(frozen=True)
class Target:
    """What the smoke test calls, and as whom; policy is None where IAM's simulator cannot be asked, and why."""

    api_url: str
    token_url: str
    tenant: ClientCredentials
    other: ClientCredentials | None = None
    basic: ClientCredentials | None = None
    policy: PolicyTarget | None = None
    policy_skipped: str = POLICY_NEEDS_STAGE


@dataclass(frozen=True)
class Reply:
    """An HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or StepFailed."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise StepFailed(f"HTTP {self.status} with a body that is not JSON") from None

    def header(self, name: str) -> str | None:
        """A header, by case-insensitive name."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


def http_request(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> Reply:
    """One HTTP request; any status is a Reply, an unreachable server is StepFailed."""
    opener = opener_for(url)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise StepFailed(f"{method} {url} did not answer: {reason}") from None


def _expect(reply: Reply, status: int, what: str) -> Any:
    if reply.status != status:
        code = ""
        try:
            code = json.loads(reply.body).get("error", {}).get("code", "")
        except (ValueError, AttributeError):
            pass
        raise StepFailed(f"{what}: expected HTTP {status}, got {reply.status}{f' ({code})' if code else ''}")
    return reply.json()


def request_token(token_url: str, client: ClientCredentials) -> tuple[str, int]:
    """A client-credentials access token and its lifetime, as Cognito's /oauth2/token gives them."""
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    reply = http_request(
        "POST",
        token_url,
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
        b"grant_type=client_credentials",
    )
    if reply.status != 200:
        error = reply.json().get("error", "?") if reply.body else "?"
        raise StepFailed(f"the token endpoint refused {client.label}'s client: HTTP {reply.status} ({error})")
    grant = reply.json()
    if grant.get("token_type", "").lower() != "bearer" or not grant.get("access_token"):
        raise StepFailed("the token endpoint's answer has no Bearer access_token")
    return grant["access_token"], int(grant.get("expires_in", 0))


@dataclass
class SmokeRun:
    """The walk through the API, step by step; later steps use what earlier ones found."""

    target: Target
    results: list[tuple[str, str, str]] = field(default_factory=list)
    token: str | None = None
    tenant_id: str | None = None
    product_id: str | None = None
    order: dict[str, Any] | None = None

    def _url(self, path: str) -> str:
        return self.target.api_url.rstrip("/") + path

    def _get(self, path: str, token: str) -> Reply:
        return http_request("GET", self._url(path), {"Authorization": f"Bearer {token}"})

    def _needs(self, value: Any, what: str) -> Any:
        if value is None:
            raise StepSkipped(f"needs {what}")
        return value

    def record(self, outcome: str, name: str, detail: str) -> None:
        """Keep and print one step's outcome."""
        self.results.append((outcome, name, detail))
        OUTPUT.progress(f"{outcome}  {name}: {detail}")

    def step(self, name: str, action: Callable[[], str]) -> None:
        """Run one step and print its outcome."""
        try:
            outcome, detail = "PASS", action()
        except StepFailed as failure:
            outcome, detail = "FAIL", str(failure)
        except StepSkipped as skip:
            outcome, detail = "SKIP", str(skip)
        self.record(outcome, name, detail)

    def health(self) -> str:
        """GET /health answers 200 without a token."""
        body = _expect(http_request("GET", self._url("/health")), 200, "GET /health")
        if body.get("status") != "ok":
            raise StepFailed(f"GET /health answered {body!r}")
        return "GET /health is 200"

    def get_token(self) -> str:
        """The tenant's client gets an access token."""
        self.token, lifetime = request_token(self.target.token_url, self.target.tenant)
        return f"{self.target.tenant.label}'s client got a Bearer token for {lifetime} s"

    def catalog(self) -> str:
        """The tenant sees its catalog; its first product is ordered next."""
        body = _expect(self._get("/catalog?limit=5", self._needs(self.token, "a token")), 200, "GET /catalog")
        items = body.get("items")
        if not items or not isinstance(body.get("tenant_id"), str):
            raise StepFailed("GET /catalog answered without items or tenant_id; does the tenant have products?")
        self.tenant_id, self.product_id = body["tenant_id"], items[0]["product_id"]
        return f"{len(items)} products of {self.tenant_id}"

    def place_order(self) -> str:
        """The tenant places an order of one unit."""
        token, product_id = self._needs(self.token, "a token"), self._needs(self.product_id, "a product")
        body = json.dumps({"items": [{"product_id": product_id, "quantity": 1}]}).encode()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"smoke-{uuid.uuid4()}",
        }
        self.order = _expect(http_request("POST", self._url("/orders"), headers, body), 201, "POST /orders")
        if self.order.get("tenant_id") != self.tenant_id or not self.order.get("order_id"):
            raise StepFailed("POST /orders answered an order without its id or of another tenant")
        return f"order {self.order['order_id']} for 1 x {product_id}, total {self.order.get('total')}"

    def read_order(self) -> str:
        """The tenant reads its order back."""
        order_id = self._needs(self.order, "an order")["order_id"]
        body = _expect(self._get(f"/orders/{order_id}", self._needs(self.token, "a token")), 200, "GET /orders/{id}")
        if body.get("order_id") != order_id or body.get("tenant_id") != self.tenant_id:
            raise StepFailed("GET /orders/{id} answered another order")
        return f"GET /orders/{order_id} is the order placed"

    def cross_tenant(self) -> str:
        """Another tenant gets 404 for the order, as for one that does not exist."""
        other = self._needs(self.target.other, "another tenant's credentials")
        order_id = self._needs(self.order, "an order")["order_id"]
        token, _ = request_token(self.target.token_url, other)
        body = _expect(self._get(f"/orders/{order_id}", token), 404, f"{other.label} reading the order")
        if body.get("error", {}).get("code") != "not_found":
            raise StepFailed(f"{other.label} got 404 without the not_found error code")
        return f"{other.label} gets 404 not_found for it"

    def rate_limit(self) -> str:
        """A basic-tier tenant gets 429 once it has spent its burst."""
        basic = self._needs(self.target.basic, "a basic-tier tenant's credentials")
        token, _ = request_token(self.target.token_url, basic)
        # One product read is one GetItem, so the burst arrives faster than the bucket refills even where
        # a catalog page is slow (the local stack's emulator serves a page's Queries one at a time). The
        # basic tenant may not have that product: its 404 has passed the limiter all the same.
        path, answered = (f"/catalog/{self.product_id}", {200, 404}) if self.product_id else ("/catalog?limit=1", {200})
        sent, statuses, limited = 0, [], None
        with ThreadPoolExecutor(max_workers=RATE_LIMIT_WORKERS) as pool:
            while sent < RATE_LIMIT_MAX_REQUESTS and 429 not in statuses:
                batch = list(pool.map(lambda _: self._get(path, token), range(RATE_LIMIT_WORKERS * 2)))
                sent += len(batch)
                statuses.extend(reply.status for reply in batch)
                unexpected = sorted({reply.status for reply in batch} - answered - {429})
                if unexpected:
                    raise StepFailed(f"{basic.label}'s burst got HTTP {unexpected} besides {sorted(answered)} and 429")
                limited = next((reply for reply in batch if reply.status == 429), None)
        if limited is None:
            raise StepFailed(f"no 429 after {sent} requests from {basic.label}")
        retry_after = limited.header("Retry-After")
        suffix = f" (Retry-After {retry_after})" if retry_after else ""
        return f"{basic.label} got 429 after {statuses.index(429)} requests{suffix}"

    def tenant_policy(self, iam: Any = None) -> None:
        """IAM's simulator on the tenant-access policy: one step per case, or one saying why none ran."""
        from scripts.deploy import policy_simulation as simulation

        policy = self.target.policy
        if policy is None:
            self.record("SKIP", POLICY_STEP, self.target.policy_skipped)
            return
        if not policy.other_tenant:
            self.record("SKIP", POLICY_STEP, "needs another tenant (--other-tenant) whose keys must be denied")
            return
        if not policy.role_arn:
            self.record(
                "FAIL",
                POLICY_STEP,
                f"stage {policy.stage} has no TENANT_ACCESS_ROLE_ARN in .chalice/config.json; "
                f"run `python -m scripts.deploy.bootstrap --stage {policy.stage}`",
            )
            return
        try:
            partition, account = simulation.role_account(policy.role_arn)
            table = simulation.table_arn(partition, policy.region, account, policy.table_name)
            asked = simulation.cases(table, policy.tenant, policy.other_tenant)
            if iam is None:
                import boto3

                iam = boto3.client("iam", region_name=policy.region)
            outcomes = simulation.run(iam, policy.role_arn, asked)
        except (simulation.SimulationError, ValueError) as error:
            # One line for a check that could not run: every case would fail the same way.
            self.record("FAIL", POLICY_STEP, str(error))
            return
        for outcome in outcomes:
            self.record("PASS" if outcome.passed else "FAIL", f"{POLICY_STEP} {outcome.case.name}", outcome.detail())
        if len({outcome.decision for outcome in outcomes}) == 1:
            OUTPUT.progress(f"      {POLICY_STEP}: {simulation.UNTOLD_APART}")

    def walk(self) -> bool:
        """Every step in order; True if none failed."""
        self.step("health", self.health)
        self.step("token", self.get_token)
        self.step("catalog", self.catalog)
        self.step("order", self.place_order)
        self.step("read back", self.read_order)
        self.step("cross-tenant 404", self.cross_tenant)
        self.step("rate limit 429", self.rate_limit)
        self.tenant_policy()
        counts = {outcome: sum(1 for r in self.results if r[0] == outcome) for outcome in ("PASS", "FAIL", "SKIP")}
        OUTPUT.progress(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
        return counts["FAIL"] == 0


def target_from_stack_file(path: Path) -> Target:
    """The local stack's URLs and seed tenants, from the stack.json `make run` writes."""
    try:
        stack = json.loads(path.read_text())
    except FileNotFoundError:
        raise SmokeError(f"no {path}: start the local stack with `make run` first") from None
    by_tier = {tenant["tier"]: tenant for tenant in stack["tenants"]}

    def credentials(tier: str) -> ClientCredentials | None:
        tenant = by_tier.get(tier)
        return ClientCredentials(tenant["tenant_id"], tenant["client_id"], tenant["client_secret"]) if tenant else None

    # A standard tenant walks the flow, so that the basic one's burst is whole for the last step.
    main = credentials("standard") or credentials("premium")
    if main is None:
        raise SmokeError(f"{path} names no standard or premium tenant")
    return Target(
        stack["api_url"],
        stack["token_url"],
        main,
        credentials("premium"),
        credentials("basic"),
        policy_skipped=LOCAL_STACK_HAS_NO_SIMULATOR,
    )


def _recorded_api_url(resources: Any) -> str:
    try:
        return str(resources.deployed_api_url())
    except StageConfigError as error:
        raise SmokeError(str(error)) from None


def target_from_stage(stage: str, project_dir: Path, tenant_ids: dict[str, str | None], api_url: str | None) -> Target:
    """A deployed stage's URLs (from .chalice/) and tenants' credentials (from their Cognito app clients)."""
    from scripts import provision
    from scripts.stage_resources import AwsClients, load_stage, token_url

    resources = load_stage(stage, project_dir)
    region, pool_id = resources.bootstrapped_pool()
    clients = AwsClients.for_region(region)
    domain = provision.user_pool_domain(clients.cognito, pool_id)
    if not domain:
        raise SmokeError(f"the user pool {pool_id} has no domain; run scripts.deploy.bootstrap --stage {stage}")

    def credentials(tenant_id: str | None) -> ClientCredentials | None:
        # Cognito returns the secret of the app client named by the tenant; no stored copy is needed.
        client = provision.app_client_named(clients.cognito, pool_id, tenant_id) if tenant_id else None
        return ClientCredentials(tenant_id, client.client_id, client.client_secret) if client else None

    main = credentials(tenant_ids["tenant"])
    if main is None:
        raise SmokeError(f"no app client for tenant {tenant_ids['tenant']!r}; create it with scripts.tenants")
    policy = PolicyTarget(
        stage,
        region,
        resources.table_name,
        # What bootstrap wrote and the API function assumes: the role whose policy is to be judged.
        resources.config.environment.get("TENANT_ACCESS_ROLE_ARN", "").strip(),
        tenant_ids["tenant"],
        tenant_ids["other"],
    )
    return Target(
        api_url or _recorded_api_url(resources),
        token_url(domain, region),
        main,
        credentials(tenant_ids["other"]),
        credentials(tenant_ids["basic"]),
        policy,
    )


def _pair(args: argparse.Namespace, label: str, prefix: str) -> ClientCredentials | None:
    client_id, secret = getattr(args, f"{prefix}client_id"), getattr(args, f"{prefix}client_secret")
    if bool(client_id) != bool(secret):
        raise SmokeError(
            f"--{prefix.replace('_', '-')}client-id and --{prefix.replace('_', '-')}client-secret go together"
        )
    return ClientCredentials(label, client_id, secret) if client_id else None


def target_from_args(args: argparse.Namespace) -> Target:
    """The target the command line names, one of its three ways."""
    if args.stack_file:
        return target_from_stack_file(args.stack_file)
    if args.stage:
        ids = {"tenant": args.tenant, "other": args.other_tenant, "basic": args.basic_tenant}
        return target_from_stage(args.stage, args.project_dir, ids, args.api_url)
    main = _pair(args, "the tenant", "")
    if not (args.api_url and args.token_url and main):
        raise SmokeError("give --api-url, --token-url, --client-id and --client-secret, or --stage, or --stack-file")
    return Target(
        args.api_url,
        args.token_url,
        main,
        _pair(args, "the other tenant", "other_"),
        _pair(args, "the basic tenant", "basic_"),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.smoke",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Secrets are read, never printed. Each run places one order of one unit.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack-file", type=Path, help="the local stack's stack.json (e.g. .local/stack.json)")
    source.add_argument(
        "--stage", help="a deployed stage; URLs from .chalice/, credentials from its Cognito app clients"
    )
    parser.add_argument("--api-url", help="the API's base URL (with --stage: instead of .chalice/deployed/STAGE.json)")
    parser.add_argument(
        "--token-url", help="the token endpoint, https://DOMAIN.auth.REGION.amazoncognito.com/oauth2/token"
    )
    for prefix, who in (
        ("", "the tenant walking the flow"),
        ("other-", "another tenant (cross-tenant 404)"),
        ("basic-", "a basic-tier tenant (429)"),
    ):
        parser.add_argument(f"--{prefix}client-id", help=f"app client id of {who}")
        parser.add_argument(f"--{prefix}client-secret", help="its client secret")
    parser.add_argument(
        "--tenant",
        default=DEMO_TENANTS["tenant"],
        help="with --stage: the tenant walking the flow (default %(default)s)",
    )
    parser.add_argument(
        "--other-tenant",
        default=DEMO_TENANTS["other"],
        help="with --stage: another tenant, whose keys the tenant's policy must deny (default %(default)s)",
    )
    parser.add_argument(
        "--basic-tenant", default=DEMO_TENANTS["basic"], help="with --stage: a basic-tier tenant (default %(default)s)"
    )
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="with --stage: the project whose .chalice/ is read"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the smoke test; 0 if every step passed or was skipped, 1 otherwise."""
    args = parse_args(argv)
    try:
        target = target_from_args(args)
    except (SmokeError, StageConfigError, ClientError, BotoCoreError) as error:
        OUTPUT.error(error)
        return 1
    except (KeyError, ValueError) as error:
        OUTPUT.error(f"the target's description is malformed ({error!r})")
        return 1
    OUTPUT.progress(f"API {target.api_url}, tokens from {target.token_url}")
    return 0 if SmokeRun(target).walk() else 1


if __name__ == "__main__":
    sys.exit(main())
