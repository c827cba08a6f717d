"""Demo cost data for `make run` (`manage.py demo operations`): a made-up FOCUS 1.x export of the demo
organisation's cloud bill for the six complete months before today, imported through the real import
service (`services.import_now`, provider `demo-cloud`) and allocated like any bill, and a monthly budget
for the fraud-ml team.

The export exercises every allocation rule (docs/finops.md): lines tagged `plinth-entity` with a ref
or a unique name, a ResourceId matched by the fraud scoring service's `plinth.dev/cost-resource-ids`
prefix, `team`-tagged storage, `plinth-shared` platform lines split across teams, a credit (negative, as
FOCUS wants), and lines nobody claims (no tags; a tag naming an entity that does not exist) left in the
unallocated bucket. Amounts are fixed numbers with a gentle month-on-month rise: the same month always
has the same lines, so loading again re-imports nothing (an export already imported is skipped) and a
re-import would replace, never double.

`purge()` (`manage.py demo purge-operations`) removes exactly what `load()` added: the `demo-cloud`
provider's imports and lines (then the months' allocation is recomputed) and the demo budget — only while
it is the one the demo set (no user changed it: a budget set on the team page carries its author).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Team

from .models import Budget, BudgetAlert, CostImport, CostLine, ImportStatus, Provider

PROVIDER = "demo-cloud"
MONTHS = 6
BUDGET_TEAM, BUDGET_CURRENCY, BUDGET_AMOUNT = "fraud-ml", "USD", Decimal("6000.00")
HEADER = ["BillingAccountId", "ProviderName", "InvoiceIssuerName", "BillingPeriodStart", "BillingPeriodEnd",
          "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeFrequency",
          "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "ServiceName",
          "ServiceCategory", "ResourceId", "RegionId", "Tags"]
ECS = "arn:aws:ecs:eu-west-1:123456789012:service/fraud-scoring-api"


@dataclass(frozen=True)
class Line:
    """One line of a month: effective cost in USD (list cost is 25 % above it for committed usage)."""

    service: str
    category: str
    effective: Decimal
    tags: dict
    resource: str = ""
    committed: bool = False
    charge: str = "Usage"


# The lines of every month; amounts grow 3 % a month from the oldest one.
LINES = [
    Line("Amazon SageMaker", "AI and Machine Learning", Decimal("1850.00"),
         {"plinth-entity": "model:default/fraud-detector"}, "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/fraud-detector-prod",
         committed=True),
    Line("Amazon SageMaker", "AI and Machine Learning", Decimal("640.00"),
         {"plinth-entity": "pipeline:default/fraud-detector-training"}, "arn:aws:sagemaker:eu-west-1:123456789012:training-job/fraud-weekly"),
    Line("Amazon Elastic Container Service", "Compute", Decimal("780.00"), {}, ECS),
    Line("Amazon ElastiCache", "Databases", Decimal("410.00"), {"plinth-entity": "card-transactions-features"},
         "arn:aws:elasticache:eu-west-1:123456789012:cluster/card-features"),
    Line("Amazon S3", "Storage", Decimal("160.00"), {"team": "fraud-ml"}, "arn:aws:s3:::ml-data-fraud"),
    Line("Amazon SageMaker", "AI and Machine Learning", Decimal("2900.00"),
         {"plinth-entity": "model:default/product-ranker"}, "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/product-ranker",
         committed=True),
    Line("Amazon SageMaker", "AI and Machine Learning", Decimal("380.00"),
         {"plinth-entity": "model:default/churn-predictor"}, "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/churn"),
    Line("Amazon Managed Service for Apache Flink", "Analytics", Decimal("520.00"),
         {"plinth-entity": "session-features-materialisation"}, "arn:aws:kinesisanalytics:eu-west-1:123456789012:application/sessions"),
    Line("Amazon S3", "Storage", Decimal("240.00"), {"team": "recsys"}, "arn:aws:s3:::ml-data-recsys"),
    Line("Amazon Elastic Kubernetes Service", "Compute", Decimal("900.00"), {"plinth-shared": "true"},
         "arn:aws:eks:eu-west-1:123456789012:cluster/ml-platform"),
    Line("Amazon VPC", "Networking", Decimal("125.00"), {}, "nat-0a1b2c3d4e5f"),
    Line("Amazon SageMaker", "AI and Machine Learning", Decimal("60.00"),
         {"plinth-entity": "model:default/retired-fraud-rules"}, "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/rules-v1"),
]
# A one-off credit on the fraud detector's endpoint in the third month (FOCUS credits are negative).
CREDIT = Line("Amazon SageMaker", "AI and Machine Learning", Decimal("-200.00"),
              {"plinth-entity": "model:default/fraud-detector"}, LINES[0].resource, charge="Credit")


def months(today: date | None = None) -> list[date]:
    """The first days of the MONTHS complete months before `today`'s, oldest first."""
    today = today or timezone.now().date()
    y, m = today.year, today.month
    out = []
    for _ in range(MONTHS):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        out.append(date(y, m, 1))
    return out[::-1]


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def write_export(path: Path, month_list: list[date]) -> Path:
    """The export as FOCUS CSV at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for n, month in enumerate(month_list):
            start, end = f"{month.isoformat()}T00:00:00Z", f"{_next(month).isoformat()}T00:00:00Z"
            growth = Decimal("1.03") ** n
            lines = [*LINES, CREDIT] if n == 2 else LINES
            for line in lines:
                effective = (line.effective * growth).quantize(Decimal("0.01")) if line.charge == "Usage" else line.effective
                listed = (effective * Decimal("1.25")).quantize(Decimal("0.01")) if line.committed else effective
                billed = listed if line.charge == "Usage" else effective
                out.writerow(["123456789012", "Demo Cloud", "Demo Cloud", start, end, start, end, line.charge, "",
                              "Usage-Based" if line.charge == "Usage" else "One-Time", billed, effective, listed,
                              effective, "USD", line.service, line.category, line.resource, "eu-west-1",
                              json.dumps(line.tags, sort_keys=True) if line.tags else ""])
    return path


@dataclass(frozen=True)
class Loaded:
    imported: CostImport | None
    budget: bool

    def __str__(self) -> str:
        what = (f"cost export {self.imported.file_name} ({self.imported.rows} lines, {self.imported.status})"
                if self.imported else "cost export already imported")
        return what + ("; fraud-ml budget set" if self.budget else "")


def load(*, today: date | None = None, folder: Path | None = None) -> Loaded:
    """Import the demo export (unless this one is imported already) and set the demo budget (unless the
    team has one in that currency)."""
    from . import services

    month_list = months(today)
    name = f"demo-focus-{month_list[0]:%Y-%m}_{month_list[-1]:%Y-%m}.csv"
    imported = None
    if not CostImport.objects.filter(provider__name=PROVIDER, file_name=name, status=ImportStatus.DONE).exists():
        path = write_export((folder or Path(settings.VAR_DIR) / "demo") / name, month_list)
        try:
            imported = services.import_now(path=path, provider=PROVIDER, source="demo")
        finally:
            path.unlink(missing_ok=True)
    budget = False
    team = Team.objects.filter(name=BUDGET_TEAM).first()
    if team is not None and not Budget.objects.filter(team=team, currency=BUDGET_CURRENCY).exists():
        Budget.objects.create(team=team, currency=BUDGET_CURRENCY, amount=BUDGET_AMOUNT)
        budget = True
    return Loaded(imported, budget)


def purge() -> dict[str, int]:
    """Remove the demo provider's imports and lines (reallocating their months) and the demo budget."""
    from . import allocation

    with transaction.atomic():
        provider = Provider.objects.filter(name=PROVIDER).first()
        month_list: list[str] = []
        lines = imports = 0
        if provider is not None:
            month_list = [m.isoformat() for m in CostLine.objects.filter(provider=provider)
                          .values_list("month", flat=True).distinct()]
            lines, _ = CostLine.objects.filter(provider=provider).delete()
            imports, _ = CostImport.objects.filter(provider=provider).delete()
            provider.delete()
        budgets = Budget.objects.filter(team__name=BUDGET_TEAM, currency=BUDGET_CURRENCY, amount=BUDGET_AMOUNT,
                                        updated_by__isnull=True)
        alerts = 0
        if budgets.exists():
            alerts, _ = BudgetAlert.objects.filter(team__name=BUDGET_TEAM, currency=BUDGET_CURRENCY,
                                                   budget=BUDGET_AMOUNT).delete()
        budget_count, _ = budgets.delete()
        if month_list:
            allocation.allocate(month_list)
    return {"lines": lines, "imports": imports, "budgets": budget_count, "budget alerts": alerts}
