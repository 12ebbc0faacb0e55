"""The catalog and order shapes the services pass around, and their JSON form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
CENT_EXPONENT = -2


def money(amount: Decimal) -> str:
    """Render an exact decimal amount as the JSON string clients receive (never a float).

    DynamoDB normalises numbers ("19.90" is stored as 19.9), so amounts are padded back to
    at least cents; padding adds zeros only, it never rounds.
    """
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"not an amount: {amount}")
    if exponent > CENT_EXPONENT:
        amount = amount.quantize(CENT)
    return format(amount, "f")


@dataclass(frozen=True)
class Product:
    """A product in one tenant's catalog."""

    product_id: str
    name: str
    price: Decimal
    currency: str
    stock: int
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """The product as the API returns it."""
        return {
            "product_id": self.product_id,
            "name": self.name,
            "description": self.description,
            "price": money(self.price),
            "currency": self.currency,
            "stock": self.stock,
        }


@dataclass(frozen=True)
class OrderLine:
    """One product of an order, priced from the catalog when the order was placed."""

    product_id: str
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        """Exact price of the line."""
        return self.unit_price * self.quantity

    def to_json(self) -> dict[str, Any]:
        """The line as the API returns it."""
        return {
            "product_id": self.product_id,
            "name": self.name,
            "quantity": self.quantity,
            "unit_price": money(self.unit_price),
            "line_total": money(self.line_total),
        }


@dataclass(frozen=True)
class Order:
    """An order placed by one tenant."""

    order_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    created_at: str
    status: str = "placed"

    @property
    def total(self) -> Decimal:
        """Exact total of the order."""
        return sum((line.line_total for line in self.lines), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        """The order as the API returns it."""
        return {
            "order_id": self.order_id,
            "status": self.status,
            "created_at": self.created_at,
            "currency": self.currency,
            "items": [line.to_json() for line in self.lines],
            "total": money(self.total),
        }


@dataclass(frozen=True)
class OrderLineRequest:
    """One line of a client's order request: which product and how many."""

    product_id: str
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    """A validated POST /orders body."""

    lines: tuple[OrderLineRequest, ...]

    def fingerprint(self) -> str:
        """A digest of the request's meaning, to tell an idempotent retry from a new request."""
        # Line order carries no meaning, so a retry that lists the same lines differently matches.
        lines = sorted(self.lines, key=lambda line: line.product_id)
        canonical = ";".join(f"{line.product_id}={line.quantity}" for line in lines)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Page:
    """One page of a list and the token for the next one, if any."""

    items: list[dict[str, Any]]
    next_token: str | None
