"""A tenant's Python client for the Tenant API: client-credentials tokens reused for their lifetime, safe retries.

Copy this file into your own project; it needs `authlib` and `requests` (which brings urllib3).
What it does for you:
- fetches an access token from the token URL with HTTP Basic client authentication (Cognito's
  /oauth2/token) and reuses it until shortly before it expires, because Cognito bills every
  token request; with a token file (in a folder only this user can write), every process of
  this user on the machine uses the same token, and one of them renews it while the others
  wait for it;
- on a 401 fetches a new token once and retries (a token can be refused before it expires, when
  the tenant's secret is rotated); a second 401 is raised, as it is not a token problem;
- retries 429 and 503 answers after their Retry-After, a 409 catalog_changed, and a 502 or 504
  from API Gateway to a request safe to repeat, after a back-off: a bounded number of attempts
  in all, reporting the last answer clearly when they run out;
- sends every order with an Idempotency-Key made once for that order and sent again on every
  retry, so a retry returns the order already placed instead of placing a second.

Run `python examples/tenant_client.py --help`; examples/README.md shows a run against the local stack.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import json
import os
import random
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import quote, urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_ATTEMPTS = 4
# Waits longer than this are cut short: the API asks for 1 second, and a caller should not hang for minutes.
MAX_RETRY_AFTER_SECONDS = 30
# (connect, read): API Gateway gives up on an integration after 29 s, so a read never needs longer.
TIMEOUT_SECONDS = (5, 35)
# A token is renewed when a fifth of its lifetime is left, but no earlier than five minutes before it
# expires: an hour's token (Cognito's default) is used for 55 minutes, a 5-minute one for 4.
MAX_RENEWAL_MARGIN_SECONDS = 300
RENEWAL_FRACTION = 5
# Answers the client retries itself (409 catalog_changed, 502, 504) are retried after this long, doubling
# each time, and up to half as long again at random, so that clients that failed together come back apart.
RETRY_BACKOFF_SECONDS = 0.5

T = TypeVar("T")


def require_secure_url(url: str) -> str:
    """url, if it is https, or plain http to a loopback address (the local stack); else ValueError.

    Client secrets and bearer tokens travel to these URLs. authlib's requests client does not check
    the scheme of the URLs it posts to (its is_secure_transport guards the server side and
    discovery documents, and AUTHLIB_INSECURE_TRANSPORT turns even that off for every host), so
    this client checks for itself: plain http only where nothing leaves the machine.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return url
    raise ValueError(f"{url!r}: use https (plain http is accepted only on loopback, for the local stack)")


def _is_loopback(hostname: str | None) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname or "").is_loopback
    except ValueError:
        return False


def needs_renewal(token: Mapping[str, Any]) -> bool:
    """Whether a token is within its renewal margin of expiry (see MAX_RENEWAL_MARGIN_SECONDS)."""
    expires_at = token.get("expires_at")
    if expires_at is None:
        # Cognito always sends expires_in; without it, the token is used until the API refuses it.
        return False
    lifetime = float(token.get("expires_in") or 0)
    margin = min(MAX_RENEWAL_MARGIN_SECONDS, lifetime / RENEWAL_FRACTION)
    return time.time() >= float(expires_at) - margin


class TokenFile:
    """One app client's access token in a file that this user's processes share (mode 0600).

    Keep it in a folder only this user can write. A token file that another user could have
    written is never used: one owned by another user, readable or writable by group or others, a
    symlink, or anything but a regular file. Otherwise, in a shared folder, another user could
    plant a token of their own tenant, and this client would act in their tenant. Such a file is
    replaced by a fresh token of this client's own (or, where the folder forbids it, the renewal
    fails with an OSError).
    """

    def __init__(self, path: Path, client_id: str, token_url: str):
        self.path = Path(path)
        self.client_id = client_id
        self.token_url = token_url

    def load(self) -> dict[str, Any] | None:
        """The stored token, or None if there is none, it is unreadable, not this user's own, or another client's."""
        try:
            # O_NONBLOCK: a FIFO planted in the token file's place must not hang the open.
            descriptor = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(descriptor) as file:
            # Checked on the open file, so the file read is the file checked.
            if not _is_private_file(os.fstat(file.fileno())):
                return None
            try:
                entry = json.load(file)
            except (OSError, ValueError):
                return None
        if not isinstance(entry, dict) or (entry.get("client_id"), entry.get("token_url")) != (
            self.client_id,
            self.token_url,
        ):
            return None
        token = entry.get("token")
        return dict(token) if isinstance(token, dict) and token.get("access_token") else None

    def store(self, token: Mapping[str, Any]) -> None:
        """Replace the stored token in one step, so a reader sees the old token or the new one, never half."""
        entry = {"client_id": self.client_id, "token_url": self.token_url, "token": dict(token)}
        self.make_folder()
        # mkstemp creates a new file of this user's, mode 0600, never following a symlink; os.replace
        # then puts it in the place of whatever the path named, a symlink included, without following it.
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump(entry, file)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def make_folder(self) -> None:
        """Create the token file's folder, for this user only (0700), if it does not exist yet."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's lock, so only one process at a time fetches a new token."""
        self.make_folder()
        # O_NOFOLLOW: a symlink planted as the lock must not make this user create or lock the file it names.
        lock_path = self.path.with_name(self.path.name + ".lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            # Closing the descriptor releases the lock.
            os.close(descriptor)


def _is_private_file(status: os.stat_result) -> bool:
    """Whether a file is a regular file of this user's that no other user can read or write."""
    return (
        stat.S_ISREG(status.st_mode)
        and status.st_uid == os.geteuid()
        and not status.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )


def api_retry(attempts: int) -> Retry:
    """urllib3's retry policy: 429 and 503 after their Retry-After, connection failures after a back-off."""
    return Retry(
        total=attempts - 1,
        # No status is retried unconditionally: a 429 or 503 is retried only when it says when to come
        # back (Retry-After). API Gateway's monthly-quota 429 carries none, and waiting would not help.
        status_forcelist=(),
        respect_retry_after_header=True,
        retry_after_max=MAX_RETRY_AFTER_SECONDS,
        # POST is safe to send again because every order carries its Idempotency-Key.
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=0.5,
        backoff_jitter=0.5,
        raise_on_status=False,
    )


class ClientCredentialsSession(OAuth2Session):
    """authlib's OAuth 2.0 session for the client-credentials grant, keeping its token until shortly before expiry.

    authlib alone re-fetches a client-credentials token once it is within `leeway` (60 s) of
    expiry, and needs a first token fetched by hand. This session fetches the first token on the
    first call, renews it within the margin of needs_renewal, shares it through a TokenFile when
    given one, and lets renew_token replace a token the API refused.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_url: str,
        *,
        token_file: TokenFile | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ):
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            # Cognito's /oauth2/token takes the client id and secret by HTTP Basic.
            token_endpoint_auth_method="client_secret_basic",
            token_endpoint=require_secure_url(token_url),
            grant_type="client_credentials",
            default_timeout=TIMEOUT_SECONDS,
        )
        adapter = HTTPAdapter(max_retries=api_retry(attempts))
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.token_file = token_file
        self.token_requests = 0
        self._renewing = threading.Lock()

    def request(self, method: str, url: str, withhold_token: bool = False, auth: Any = None, **kwargs: Any) -> Any:
        """Send a request; a call that carries the token first makes sure it has a fresh one."""
        if not withhold_token and auth is None:
            self.ensure_active_token()
        return super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)

    def ensure_active_token(self, token: Any = None) -> bool:
        """Renew the token if there is none yet or it is within its renewal margin; authlib calls this per request."""
        current = self.token
        if current is None or needs_renewal(current):
            self.renew_token(current["access_token"] if current else None)
        return True

    def renew_token(self, stale: str | None) -> None:
        """Replace the access token stale (None: no token yet) by one another thread or process renewed, or a new one."""
        with self._renewing:
            if self._usable_instead_of(self.token, stale):
                return
            if self.token_file is None:
                self._fetch()
                return
            with self.token_file.locked():
                shared = self.token_file.load()
                if self._usable_instead_of(shared, stale):
                    self.token = shared
                else:
                    self.token_file.store(self._fetch())

    @staticmethod
    def _usable_instead_of(token: Mapping[str, Any] | None, stale: str | None) -> bool:
        return token is not None and token["access_token"] != stale and not needs_renewal(token)

    def _fetch(self) -> Any:
        self.token_requests += 1
        return self.fetch_token()


class TenantApiError(Exception):
    """An error answer of the API: its status, the envelope's code and message, and how many attempts were made."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None, attempts: int, retry_after: str):
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.attempts = attempts
        self.retry_after = retry_after
        gave_up = f" after {attempts} attempts" if attempts > 1 else ""
        details = [
            f"request id {request_id}" if request_id else "",
            f"Retry-After {retry_after} s" if retry_after else "",
        ]
        noted = "; ".join(detail for detail in details if detail)
        super().__init__(f"HTTP {status} {code}{gave_up}: {message}" + (f" ({noted})" if noted else ""))

    @classmethod
    def from_response(cls, response: requests.Response, attempts: int) -> TenantApiError:
        """The error an answer carries in the API's envelope (or, from a proxy or gateway, whatever it sent)."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {"code": "http_error", "message": response.text[:200] or response.reason}
        return cls(
            response.status_code,
            str(error.get("code")),
            str(error.get("message")),
            body.get("request_id") if isinstance(body, dict) else None,
            attempts,
            response.headers.get("Retry-After", ""),
        )


@dataclass(frozen=True)
class Product:
    """One product of the tenant's catalog."""

    product_id: str
    name: str
    description: str
    price: Decimal
    currency: str
    stock: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Product:
        """A product from its JSON; prices are decimal strings, kept exact."""
        return cls(
            body["product_id"],
            body["name"],
            body["description"],
            Decimal(body["price"]),
            body["currency"],
            body["stock"],
        )


@dataclass(frozen=True)
class OrderLine:
    """One product of an order, at the price it had when the order was placed."""

    product_id: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> OrderLine:
        """An order line from its JSON."""
        return cls(
            body["product_id"],
            body["name"],
            body["quantity"],
            Decimal(body["unit_price"]),
            Decimal(body["line_total"]),
        )


@dataclass(frozen=True)
class Order:
    """An order of the tenant."""

    order_id: str
    status: str
    created_at: str
    currency: str
    lines: tuple[OrderLine, ...]
    total: Decimal

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Order:
        """An order from its JSON."""
        return cls(
            body["order_id"],
            body["status"],
            body["created_at"],
            body["currency"],
            tuple(OrderLine.from_json(line) for line in body["items"]),
            Decimal(body["total"]),
        )


@dataclass(frozen=True)
class PlacedOrder:
    """The answer to placing an order: the order, the key it was placed with, and whether it was placed before."""

    order: Order
    idempotency_key: str
    replayed: bool


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the token that resumes it (None on the last page)."""

    items: list[T]
    next_token: str | None


def attempts_made(response: requests.Response) -> int:
    """How many requests the transport sent for this answer: the first and urllib3's retries (429, 503, failures)."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def is_worth_repeating(response: requests.Response, error: TenantApiError) -> bool:
    """Whether an error answer calls for the same request again, unchanged, after a back-off.

    A 409 catalog_changed placed nothing and asks for the request again. A 502 or 504 from API
    Gateway lost the function's answer, so the request may have been carried out: it is repeated
    only when doing it twice is the same as once, a GET or a request carrying an Idempotency-Key.
    """
    if error.status == 409:
        return error.code == "catalog_changed"
    if error.status in (502, 504):
        request = response.request
        return request.method == "GET" or "Idempotency-Key" in request.headers
    return False


def retry_backoff_seconds(retry: int) -> float:
    """The wait before the client's own retry number retry (1 for the first), at most MAX_RETRY_AFTER_SECONDS."""
    wait = RETRY_BACKOFF_SECONDS * 2.0 ** (retry - 1) * random.uniform(1, 1.5)
    return min(wait, MAX_RETRY_AFTER_SECONDS)


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key for one logical order; keep it to retry that order later."""
    return str(uuid.uuid4())


class TenantClient:
    """The Tenant API as one tenant sees it: its catalog and its orders."""

    def __init__(
        self,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        token_file: Path | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ):
        self.api_url = require_secure_url(api_url).rstrip("/")
        shared = TokenFile(token_file, client_id, token_url) if token_file else None
        self.session = ClientCredentialsSession(
            client_id, client_secret, token_url, token_file=shared, attempts=attempts
        )
        self.attempts = attempts
        self.api_requests = 0

    def __enter__(self) -> TenantClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def catalog_page(self, limit: int = 20, next_token: str | None = None) -> Page[Product]:
        """One page of the catalog, by product id."""
        return self._page("/catalog", limit, next_token, Product.from_json)

    def iter_catalog(self, page_size: int = 100) -> Iterator[Product]:
        """Every product of the catalog, page after page."""
        return self._iterate(self.catalog_page, page_size)

    def get_product(self, product_id: str) -> Product:
        """One product; TenantApiError 404 if the tenant has none of that id."""
        return Product.from_json(self._call("GET", f"/catalog/{quote(product_id, safe='')}").json())

    def place_order(self, quantities: Mapping[str, int], idempotency_key: str | None = None) -> PlacedOrder:
        """Place an order of quantity by product id; retried with the same Idempotency-Key, so placed once.

        A 409 catalog_changed (prices moved under concurrent orders) and a 502 or 504 are retried
        with the same key too, within the client's attempts. Pass your own key
        (new_idempotency_key(), or your system's id for this order) to retry the same order later,
        after a failure or a restart: the API answers with the order it placed for that key (for
        24 hours) instead of placing another.
        """
        key = idempotency_key or new_idempotency_key()
        lines = [{"product_id": product_id, "quantity": quantity} for product_id, quantity in quantities.items()]
        body = {"items": lines}
        response = self._call("POST", "/orders", json=body, headers={"Idempotency-Key": key})
        replayed = response.headers.get("Idempotent-Replayed", "false").lower() == "true"
        return PlacedOrder(Order.from_json(response.json()), key, replayed)

    def get_order(self, order_id: str) -> Order:
        """One order; TenantApiError 404 if the tenant has none of that id."""
        return Order.from_json(self._call("GET", f"/orders/{quote(order_id, safe='')}").json())

    def orders_page(self, limit: int = 20, next_token: str | None = None) -> Page[Order]:
        """One page of the tenant's orders, newest first."""
        return self._page("/orders", limit, next_token, Order.from_json)

    def iter_orders(self, page_size: int = 100) -> Iterator[Order]:
        """Every order of the tenant, newest first, page after page."""
        return self._iterate(self.orders_page, page_size)

    def _page(self, path: str, limit: int, next_token: str | None, parse: Callable[[Any], T]) -> Page[T]:
        params: dict[str, Any] = {"limit": limit}
        if next_token:
            params["next_token"] = next_token
        body = self._call("GET", path, params=params).json()
        return Page([parse(item) for item in body["items"]], body["next_token"])

    @staticmethod
    def _iterate(fetch_page: Callable[[int, str | None], Page[T]], page_size: int) -> Iterator[T]:
        next_token = None
        while True:
            page = fetch_page(page_size, next_token)
            yield from page.items
            next_token = page.next_token
            if next_token is None:
                return

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.api_url}{path}"
        attempts = retries = 0
        renewed = False
        while True:
            response = self._send(method, url, **kwargs)
            attempts += attempts_made(response)
            if response.status_code == 401 and not renewed:
                # A token can be refused before it expires (the tenant's secret was rotated): renew it once.
                sent = str(response.request.headers.get("Authorization", ""))
                self.session.renew_token(sent.removeprefix("Bearer "))
                renewed = True
                continue
            if response.status_code < 400:
                return response
            error = TenantApiError.from_response(response, attempts)
            if attempts >= self.attempts or not is_worth_repeating(response, error):
                raise error
            retries += 1
            time.sleep(retry_backoff_seconds(retries))

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.api_requests += 1
        return self.session.request(method, url, **kwargs)


def _demo(client: TenantClient) -> None:
    products = list(client.iter_catalog(page_size=5))
    print(f"catalog: {len(products)} products, read 5 a page")
    in_stock = [product for product in products if product.stock > 0]
    if not in_stock:
        print("no product in stock: no order to place")
        return
    product = client.get_product(in_stock[0].product_id)
    print(f"product {product.product_id}: {product.name}, {product.price} {product.currency}, {product.stock} in stock")

    key = new_idempotency_key()
    placed = client.place_order({product.product_id: 1}, idempotency_key=key)
    print(f"order {placed.order.order_id} placed: {placed.order.total} {placed.order.currency}, Idempotency-Key {key}")
    again = client.place_order({product.product_id: 1}, idempotency_key=key)
    print(f"same key again: order {again.order.order_id}, replayed: {again.replayed} (placed once)")

    order = client.get_order(placed.order.order_id)
    print(f"order {order.order_id} read back: {order.status}, {len(order.lines)} line(s)")
    newest = client.orders_page(limit=5)
    print(f"orders: {len(newest.items)} on the first page, newest {newest.items[0].order_id}")
    print(f"token requests: {client.session.token_requests} for {client.api_requests} API requests")


def main(argv: list[str] | None = None) -> int:
    """List the catalog, place an order and replay it, read orders back: a short tour of the API."""
    parser = argparse.ArgumentParser(
        description=main.__doc__,
        epilog="The client secret is read from CLIENT_SECRET only, never from the command line (ps shows arguments).",
    )
    parser.add_argument("--api-url", default=os.environ.get("API"), help="the API's base URL (default: $API)")
    parser.add_argument("--token-url", default=os.environ.get("TOKEN_URL"), help="the token URL (default: $TOKEN_URL)")
    parser.add_argument(
        "--client-id", default=os.environ.get("CLIENT_ID"), help="the app client id (default: $CLIENT_ID)"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=os.environ.get("TOKEN_FILE"),
        help="share the access token with this user's other processes through this file, in a folder only"
        " this user can write (default: $TOKEN_FILE; none)",
    )
    parser.add_argument(
        "--attempts", type=int, default=DEFAULT_ATTEMPTS, help=f"attempts per request (default {DEFAULT_ATTEMPTS})"
    )
    args = parser.parse_args(argv)
    secret = os.environ.get("CLIENT_SECRET")
    missing = [
        name
        for name, value in (
            ("--api-url or API", args.api_url),
            ("--token-url or TOKEN_URL", args.token_url),
            ("--client-id or CLIENT_ID", args.client_id),
            ("CLIENT_SECRET", secret),
        )
        if not value
    ]
    if missing:
        parser.error(f"missing {', '.join(missing)}")
    if args.attempts < 1:
        parser.error("--attempts must be at least 1")
    try:
        with TenantClient(
            args.api_url, args.token_url, args.client_id, secret, token_file=args.token_file, attempts=args.attempts
        ) as client:
            _demo(client)
    # OSError: the token file or its folder cannot be created, locked or replaced (a path under a file,
    # no permission, a symlink planted as the lock).
    except (TenantApiError, OAuthError, requests.RequestException, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
