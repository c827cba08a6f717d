"""A model's declared business value (docs/finops.md, "ROI"): two annotations on its descriptor,

    plinth.dev/value-monthly: "25000 USD"         # amount per month and ISO 4217 currency
    plinth.dev/value-kpi: "Chargeback losses avoided"

read and checked here; an invalid declaration is shown with its reason, never guessed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

VALUE_ANNOTATION = "plinth.dev/value-monthly"
KPI_ANNOTATION = "plinth.dev/value-kpi"
FORM = re.compile(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s+([A-Za-z]{3})\s*")


@dataclass(frozen=True)
class Value:
    amount: Decimal | None = None
    currency: str = ""
    kpi: str = ""
    error: str = ""
    declared: bool = False

    @property
    def ok(self) -> bool:
        return self.amount is not None and not self.error


def declared_value(annotations) -> Value:
    annotations = annotations if isinstance(annotations, dict) else {}
    raw = annotations.get(VALUE_ANNOTATION)
    kpi = annotations.get(KPI_ANNOTATION)
    kpi = kpi.strip()[:200] if isinstance(kpi, str) else ""
    if raw is None:
        return Value(kpi=kpi)
    match = FORM.fullmatch(raw) if isinstance(raw, str) else None
    if not match:
        return Value(kpi=kpi, declared=True,
                     error=f"{VALUE_ANNOTATION}: expected '<amount per month> <currency>', e.g. '25000 USD'")
    try:
        amount = Decimal(match.group(1).replace(",", "").replace("_", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        return Value(kpi=kpi, declared=True, error=f"{VALUE_ANNOTATION}: not a number")
    if amount >= Decimal("1e15"):
        return Value(kpi=kpi, declared=True, error=f"{VALUE_ANNOTATION}: amount too large")
    if not kpi:
        return Value(amount=amount, currency=match.group(2).upper(), declared=True,
                     error=f"{KPI_ANNOTATION}: name the KPI the model moves")
    return Value(amount=amount, currency=match.group(2).upper(), kpi=kpi, declared=True)


def ratio(value: Value, cost: Decimal | None) -> float | None:
    """Value per unit of cost (same currency only); None when either is missing or the cost is ≤ 0."""
    if not value.ok or cost is None or cost <= 0:
        return None
    return float(value.amount / cost)


def value_dict(value: Value | None) -> dict | None:
    """A declared value as the APIs give it: the amount, currency and KPI; {"error"} when invalid; None
    when nothing is declared."""
    if value is None or not value.declared:
        return None
    if not value.ok:
        return {"error": value.error}
    return {"monthly": str(value.amount), "currency": value.currency, "kpi": value.kpi}
