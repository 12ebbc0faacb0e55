"""Every DynamoDB call that serves a tenant is signed with credentials STS issued for that tenant, and only those.

moto does not evaluate IAM, so what is proven here is what decides IAM's answer in AWS: the
access key each request is signed with (recorded where botocore signs it), the session tag the
key was issued with (recorded from the AssumeRole call and its answer), and the partition keys
each call names. Then: no key touches two tenants' items, no tenant item is reached with the
function's own key, and the tenant-access policy, filled in with the key's tag, allows each call.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest
from botocore.auth import SigV4Auth
from botocore.client import BaseClient
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from chalicelib import services, tenant_repositories
from chalicelib.errors import TenantAccessUnavailable
from chalicelib.models import OrderLineRequest, OrderRequest
from chalicelib.store import keys, tenant_access
from chalicelib.tenancy import TenantContext
from scripts import tenant_access_role
from scripts.deploy.iam_permissions import allows, required_permissions, with_principal_tags
from scripts.deploy.operation_recorder import Operation
from tests.support.api import Api, assert_error
from tests.support.clock import FakeClock
from tests.support.tenants import ACME, GLOBEX, INITECH, TABLE_NAME, TENANTS

ACCOUNT = "123456789012"
TENANT_POLICY = tenant_access_role.access_policy(f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE_NAME}")


@dataclass(frozen=True)
class SignedCall:
    """One request as botocore signed it: with which access key, to which service, saying what."""

    access_key: str
    service: str
    operation: str
    body: dict[str, Any]

    def partition_keys(self) -> tuple[str, ...]:
        """The DynamoDB partition keys the call names, as IAM's dynamodb:LeadingKeys sees them."""
        needed = required_permissions(Operation("dynamodb", self.operation, self.body, "us-east-1"), ACCOUNT)
        return tuple(key for permission in needed for key in permission.leading_keys or ())

    def permissions(self) -> list[Any]:
        """What IAM checks for the call."""
        return required_permissions(Operation("dynamodb", self.operation, self.body, "us-east-1"), ACCOUNT)


@dataclass
class Wire:
    """What went over the wire: signed calls, and the tenant each issued access key was tagged with."""

    signed: list[SignedCall]
    issued: dict[str, str]  # access key id -> TenantID session tag of the AssumeRole that issued it
    assumed: list[str]  # the tenants of every AssumeRole, in order
    own_key: str  # the function's own credentials (moto's, inside mock_aws)

    def tenant_calls(self) -> list[SignedCall]:
        """The DynamoDB calls signed with any key but the function's own."""
        return [call for call in self.dynamodb() if call.access_key != self.own_key]

    def dynamodb(self) -> list[SignedCall]:
        """The signed DynamoDB calls."""
        return [call for call in self.signed if call.service == "dynamodb"]


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[Wire]:
    """Record every signature and every AssumeRole (request and answer) while the test runs."""
    recorded = Wire(signed=[], issued={}, assumed=[], own_key=os.environ["AWS_ACCESS_KEY_ID"])
    lock = threading.Lock()
    sign = SigV4Auth.add_auth

    def recording_sign(self: SigV4Auth, request: Any) -> None:
        sign(self, request)
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        body = json.loads(request.body) if target and request.body else {}
        call = SignedCall(self.credentials.access_key, self._service_name, target.rpartition(".")[2], body)
        with lock:
            recorded.signed.append(call)

    call_api = BaseClient._make_api_call

    def observing_call(client: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
        answer = call_api(client, operation_name, params)
        if operation_name == "AssumeRole":
            tags = {tag["Key"]: tag["Value"] for tag in params.get("Tags", [])}
            with lock:
                recorded.issued[answer["Credentials"]["AccessKeyId"]] = tags.get(tenant_access.TENANT_TAG, "")
                recorded.assumed.append(tags.get(tenant_access.TENANT_TAG, ""))
        return answer

    monkeypatch.setattr(SigV4Auth, "add_auth", recording_sign)
    monkeypatch.setattr(BaseClient, "_make_api_call", observing_call)
    yield recorded


def tenant_of_key(partition_key: str) -> str | None:
    """The tenant whose data a partition key is; None for the registry's own records."""
    parts = partition_key.split("#")
    return parts[1] if parts[0] == "TENANT" and len(parts) > 2 else None


def mixed_run(api: Api) -> dict[str, str]:
    """Each route for three tenants, interleaved, with misses and another tenant's ids; returns order ids by tenant."""
    placed: dict[str, str] = {}
    for _ in range(2):
        for tenant in TENANTS:
            assert api.get("/catalog?limit=2", tenant).status == 200
            assert api.get("/catalog/prod-001", tenant).status == 200
            assert api.get("/catalog/prod-999", tenant).status == 404
            reply = api.post_order([{"product_id": "prod-002", "quantity": 1}], tenant, idempotency_key="k1")
            assert reply.status == 201
            placed[tenant.tenant_id] = reply.json["order_id"]
            assert api.post_order([{"product_id": "prod-003", "quantity": 1}], tenant).status == 201
            assert api.get("/orders?limit=1", tenant).status == 200
            assert api.get(f"/orders/{placed[tenant.tenant_id]}", tenant).status == 200
    # Each tenant asks for the others' orders: not found, and with its own credentials.
    for tenant in TENANTS:
        for owner, order_id in placed.items():
            if owner != tenant.tenant_id:
                assert api.get(f"/orders/{order_id}", tenant).status == 404
    return placed


def test_every_dynamodb_call_serving_a_tenant_is_signed_with_that_tenants_credentials(api: Api, wire: Wire):
    mixed_run(api)

    tenant_calls = wire.tenant_calls()
    assert len(tenant_calls) > 50
    tenants_by_key: dict[str, set[str]] = {}
    for call in tenant_calls:
        assert call.access_key in wire.issued, "signed with a key no AssumeRole issued"
        for partition_key in call.partition_keys():
            tenants_by_key.setdefault(call.access_key, set()).add(tenant_of_key(partition_key) or "registry")
            assert tenant_of_key(partition_key) == wire.issued[call.access_key], (call, partition_key)
    # No key ever touched two tenants' items, and each tenant had a key of its own.
    assert all(len(tenants) == 1 for tenants in tenants_by_key.values()), tenants_by_key
    assert sorted(tenant for (tenant,) in tenants_by_key.values()) == sorted(t.tenant_id for t in TENANTS)


def test_the_functions_own_credentials_reach_the_registry_only(api: Api, wire: Wire):
    mixed_run(api)

    own = [call for call in wire.dynamodb() if call.access_key == wire.own_key]
    # The authorizer (which runs in this process in tests) reads the registry with them; nothing else does.
    assert own, "the authorizer's registry reads were expected"
    for call in own:
        assert call.operation == "GetItem"
        assert all(tenant_of_key(key) is None for key in call.partition_keys()), call


def test_the_tenant_access_policy_with_the_keys_tag_allows_every_call_and_another_tag_none(api: Api, wire: Wire):
    mixed_run(api)

    for call in wire.dynamodb():
        if call.access_key == wire.own_key:
            continue
        tenant = wire.issued[call.access_key]
        for permission in call.permissions():
            assert allows(with_principal_tags(TENANT_POLICY, {tenant_access.TENANT_TAG: tenant}), permission)
            for other in {t.tenant_id for t in TENANTS} - {tenant}:
                assert not allows(with_principal_tags(TENANT_POLICY, {tenant_access.TENANT_TAG: other}), permission)


def test_each_tenant_is_assumed_once_per_container_and_tagged_with_its_own_id(api: Api, wire: Wire):
    mixed_run(api)
    mixed_run(api)

    assert sorted(wire.assumed) == sorted(t.tenant_id for t in TENANTS)
    assume_calls = [call for call in wire.signed if call.service == "sts"]
    assert {call.access_key for call in assume_calls} == {wire.own_key}


def test_concurrent_first_requests_of_one_tenant_assume_its_role_once(table, wire: Wire):
    tenant = TenantContext(INITECH.tenant_id, INITECH.tier, frozenset())
    start = threading.Barrier(12)
    failures: list[BaseException] = []

    def first_request() -> None:
        start.wait()
        try:
            services.get_product(tenant_repositories.repositories_for(tenant), "prod-001")
        except BaseException as error:  # noqa: BLE001 - reported below, with the thread's failure
            failures.append(error)

    threads = [threading.Thread(target=first_request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert wire.assumed == [INITECH.tenant_id]
    assert {call.access_key for call in wire.dynamodb()} == set(wire.issued)


# --- when STS fails --------------------------------------------------------------------------


@pytest.fixture
def pause(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock that times the pause after STS failed for a tenant."""
    fake = FakeClock(1000.0)
    monkeypatch.setattr(tenant_access.tenant_clients, "monotonic", fake)
    return fake


def failing_sts(code: str) -> Stubber:
    """The function's STS client answering AssumeRole with an error, as STS does when it throttles or refuses."""
    stubber = Stubber(tenant_access._sts_client())
    stubber.add_client_error("assume_role", service_error_code=code, http_status_code=400)
    return stubber


@pytest.mark.parametrize("code", ["Throttling", "AccessDenied", "RegionDisabledException"])
def test_a_failure_to_assume_is_a_503_with_retry_after_and_no_call_with_other_credentials(
    api: Api, wire: Wire, code: str, pause: FakeClock
):
    with failing_sts(code):
        reply = api.get("/catalog/prod-001", GLOBEX)

    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert wire.tenant_calls() == []
    assert all(tenant_of_key(key) is None for call in wire.dynamodb() for key in call.partition_keys())
    # For the Retry-After second, the tenant's requests answer 503 without asking STS again.
    assert_error(api.get("/catalog/prod-001", GLOBEX), 503, "service_unavailable")
    assert wire.assumed == [], "STS (which answers again) was not asked within the pause"
    # The pause is this tenant's only, and after it nothing of the failure is kept.
    assert api.get("/catalog/prod-001", ACME).status == 200
    pause.advance(1.0)
    assert api.get("/catalog/prod-001", GLOBEX).status == 200
    assert wire.assumed == [ACME.tenant_id, GLOBEX.tenant_id]


def test_an_order_is_not_written_when_credentials_cannot_be_had(api: Api, wire: Wire, pause: FakeClock):
    with failing_sts("Throttling"):
        reply = api.post_order([{"product_id": "prod-001", "quantity": 1}], ACME)
    assert_error(reply, 503, "service_unavailable")
    pause.advance(1.0)
    assert api.get("/orders", ACME).json["items"] == []


# --- refresh -----------------------------------------------------------------------------------


class Clock:
    """The time the tenants' credentials are checked against, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.timezone.utc)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += datetime.timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock for the tenants' credentials, and STS's expiry times shifted with it as if it were the real one."""
    fake = Clock()
    started = fake.now
    assume = tenant_access.assume_tenant_role

    def assume_on_the_fake_clock(tenant_id: str) -> dict[str, Any]:
        metadata = assume(tenant_id)
        expiry = datetime.datetime.fromisoformat(metadata["expiry_time"]) + (fake.now - started)
        return {**metadata, "expiry_time": expiry.isoformat()}

    monkeypatch.setattr(tenant_access.tenant_clients, "clock", fake)
    monkeypatch.setattr(tenant_access, "assume_tenant_role", assume_on_the_fake_clock)
    return fake


def test_credentials_in_their_last_15_minutes_are_refreshed_by_a_request_that_succeeds(
    api: Api, wire: Wire, clock: Clock
):
    assert api.get("/catalog/prod-001", GLOBEX).status == 200
    clock.advance(46)  # botocore's advisory window: the next call refreshes, others need not wait

    assert api.get("/catalog/prod-001", GLOBEX).status == 200
    assert api.get("/catalog/prod-001", GLOBEX).status == 200

    assert wire.assumed == [GLOBEX.tenant_id, GLOBEX.tenant_id]
    keys_used = [call.access_key for call in wire.tenant_calls()]
    assert len(set(keys_used)) == 2 and keys_used[-1] != keys_used[0]
    assert all(wire.issued[key] == GLOBEX.tenant_id for key in keys_used)


def test_a_failed_refresh_before_the_last_ten_minutes_keeps_serving_with_the_current_credentials(
    api: Api, wire: Wire, clock: Clock
):
    assert api.get("/catalog/prod-001", GLOBEX).status == 200
    clock.advance(46)
    with failing_sts("Throttling"):
        assert api.get("/catalog/prod-001", GLOBEX).status == 200
    keys_used = {call.access_key for call in wire.tenant_calls()}
    assert len(keys_used) == 1 and wire.issued[keys_used.pop()] == GLOBEX.tenant_id


def test_a_failed_refresh_in_the_last_ten_minutes_is_a_503_not_a_call_with_expiring_credentials(
    api: Api, wire: Wire, clock: Clock, pause: FakeClock
):
    assert api.get("/catalog/prod-001", GLOBEX).status == 200
    clock.advance(52)
    signed_before = len(wire.dynamodb())
    with failing_sts("Throttling"):
        reply = api.get("/catalog/prod-001", GLOBEX)
    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert [c for c in wire.dynamodb()[signed_before:] if c.access_key != wire.own_key] == []
    # STS answers again: the same container carries on with fresh credentials.
    pause.advance(1.0)
    assert api.get("/catalog/prod-001", GLOBEX).status == 200


def test_a_refresh_for_a_list_is_one_assume_role_not_one_per_parallel_query(
    api: Api, wire: Wire, clock: Clock, pause: FakeClock
):
    assert api.get("/catalog", GLOBEX).status == 200
    clock.advance(52)  # every signature would now wait for fresh credentials
    with failing_sts("Throttling"):
        assert_error(api.get("/catalog", GLOBEX), 503, "service_unavailable")
    # The first AssumeRole, then one refresh attempt (the failure) for the 16 Queries of the page.
    assert wire.assumed == [GLOBEX.tenant_id]
    with failing_sts("Throttling") as stubbed:
        assert_error(api.get("/catalog", GLOBEX), 503, "service_unavailable")
        assert len(stubbed._queue) == 1, "STS was asked again within the pause"
    pause.advance(1.0)
    assert api.get("/catalog", GLOBEX).status == 200
    assert wire.assumed == [GLOBEX.tenant_id, GLOBEX.tenant_id]
    assert api.get("/catalog", INITECH).status == 200


# --- configuration -----------------------------------------------------------------------------


def test_without_a_role_no_tenant_data_is_served_at_all(api: Api, wire: Wire, env):
    env.set(TENANT_ACCESS_ROLE_ARN=None)
    reply = api.get("/catalog/prod-001", ACME)
    # A deployment fault, not the client's: 503 (and a log line naming the setting), never a 401.
    assert reply.status == 503
    assert [call for call in wire.dynamodb() if any(tenant_of_key(k) for k in call.partition_keys())] == []


def test_a_repository_cannot_be_reached_through_the_service_layer_with_the_functions_own_client(monkeypatch):
    """The repositories the routes hand the services take each tenant's client from tenant_access and nowhere else."""
    handed_out: list[str] = []

    def recording(tenant_id: str) -> Any:
        handed_out.append(tenant_id)
        raise TenantAccessUnavailable()

    monkeypatch.setattr(tenant_repositories, "tenant_dynamodb", recording)
    tenant = TenantContext("acme", "basic", frozenset())
    repositories = tenant_repositories.repositories_for
    calls: list[Callable[[], Any]] = [
        lambda: services.list_products(tenant, repositories(tenant), 10, None),
        lambda: services.get_product(repositories(tenant), "prod-001"),
        lambda: services.list_orders(tenant, repositories(tenant), 10, None),
        lambda: services.get_order(repositories(tenant), "ord_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        lambda: services.place_order(tenant, repositories(tenant), OrderRequest((OrderLineRequest("prod-001", 1),))),
    ]
    for call in calls:
        with pytest.raises(TenantAccessUnavailable):
            call()
    assert handed_out == ["acme"] * len(calls)


def test_a_session_name_is_refused_for_a_malformed_tenant_id():
    assert tenant_access.session_name("acme") == "tenant-acme"
    for malformed in ("", "ACME", "a#b", "a" * 49, "a*"):
        with pytest.raises(ValueError):
            tenant_access.session_name(malformed)
    assert keys.TENANT_ID.fullmatch("a" * 48) and len(tenant_access.session_name("a" * 48)) <= 64


def test_an_unreachable_sts_is_a_503(api: Api, monkeypatch: pytest.MonkeyPatch):
    def unreachable(*_: Any, **__: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com")

    monkeypatch.setattr(tenant_access._sts_client(), "assume_role", unreachable)
    reply = api.get("/orders", INITECH)
    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"


def test_a_container_keeps_its_most_recently_used_tenants_and_assumes_again_for_an_evicted_one(
    table, wire: Wire, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(tenant_access, "tenant_clients", tenant_access.TenantClients(max_tenants=2))
    contexts = {t.tenant_id: TenantContext(t.tenant_id, t.tier, frozenset()) for t in TENANTS}
    for tenant_id in ("acme", "globex", "acme", "initech"):
        services.get_product(tenant_repositories.repositories_for(contexts[tenant_id]), "prod-001")
    assert tenant_access.tenant_clients.cached() == ["acme", "initech"]
    services.get_product(tenant_repositories.repositories_for(contexts["globex"]), "prod-001")
    assert wire.assumed == ["acme", "globex", "initech", "globex"]
