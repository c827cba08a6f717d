"""The demo cost data `manage.py demo operations` loads for `make run` (portal/costs/demo.py): a FOCUS
export imported through the real import service and allocated to the demo organisation, loaded once,
and purged exactly — a real provider's lines and a budget a person set stay.

Figures worked out by hand for 3 December 2026 (months June–November; amounts rise 3 % a month, so
November is the base × 1.03^5 = 1.1592740743): the fraud detector 1,850 → 2,144.66; the scoring
service's ECS line (allocated by its ResourceId prefix) 780 → 904.23; unallocated the NAT gateway 125 →
144.91 plus the line tagged with a model that does not exist 60 → 69.56 = 214.47; the shared EKS line
900 → 1,043.35 split across fraud-ml and recsys. August (× 1.0609) carries the −200 credit: 1,962.66 − 200."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum

from portal.costs import demo, selectors, services
from portal.costs.models import Allocation, Budget, CostImport, CostLine

from .conftest import line, write_csv

pytestmark = pytest.mark.django_db
TODAY = date(2026, 12, 3)
NOV, AUG = date(2026, 11, 1), date(2026, 8, 1)


def _cost(month, **filters) -> Decimal:
    return Allocation.objects.filter(month=month, **filters).aggregate(s=Sum("effective_cost"))["s"]


def test_the_demo_export_is_imported_once_and_allocated_to_the_demo_organisation(demo_org, tmp_path):
    loaded = demo.load(today=TODAY, folder=tmp_path)
    assert loaded.imported.status == "done", loaded.imported.error
    assert loaded.imported.rows == 6 * len(demo.LINES) + 1 and loaded.budget
    assert not list(tmp_path.iterdir())  # the generated file is not left behind
    again = demo.load(today=TODAY, folder=tmp_path)
    assert again.imported is None and not again.budget  # idempotent: nothing imported or set twice
    assert CostImport.objects.count() == 1 and CostLine.objects.count() == 6 * len(demo.LINES) + 1
    assert sorted({m.isoformat()[:7] for m in CostLine.objects.values_list("month", flat=True)}) == [
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    assert _cost(NOV, entity__ref="model:default/fraud-detector") == Decimal("2144.66")
    assert _cost(NOV, entity__ref="component:default/fraud-scoring-service") == Decimal("904.23")  # ResourceId rule
    assert _cost(NOV, bucket="unallocated") == Decimal("214.47")
    assert _cost(NOV, bucket="shared") == Decimal("1043.35")
    assert set(Allocation.objects.filter(month=NOV, bucket="shared").values_list("owner_team__name", flat=True)) == {
        "fraud-ml", "recsys"}
    assert _cost(AUG, entity__ref="model:default/fraud-detector") == Decimal("1762.66")  # the credit
    grace = demo_org["users"]["grace"]
    rows = {r["entity"].ref: r for r in selectors.portfolio(grace, NOV)["rows"]}
    detector = rows["model:default/fraud-detector"]
    assert (detector["value"].amount, detector["cost"]) == (Decimal("25000"), Decimal("2144.66"))
    assert detector["ratio"] == pytest.approx(25000 / 2144.66)
    assert set(rows) == {"model:default/fraud-detector", "model:default/product-ranker", "model:default/churn-predictor"}
    assert Budget.objects.get(team__name="fraud-ml").amount == demo.BUDGET_AMOUNT


def test_purge_removes_exactly_the_demo_costs(demo_org, tmp_path):
    grace = demo_org["users"]["grace"]
    real = services.import_now(path=write_csv(tmp_path / "aws.csv", [line("99.00", tags={"team": "recsys"})]),
                               provider="aws")
    assert real.status == "done", real.error
    services.budget_set(actor=grace, team=demo_org["teams"]["recsys"], currency="USD", amount="4000")
    demo.load(today=TODAY, folder=tmp_path / "demo")
    removed = demo.purge()
    assert removed == {"lines": 6 * len(demo.LINES) + 1, "imports": 1, "budgets": 1, "budget alerts": 0}
    assert list(CostImport.objects.values_list("pk", flat=True)) == [real.pk]
    assert CostLine.objects.count() == 1
    assert not Allocation.objects.filter(month=NOV).exists()  # November's allocation went with its lines
    assert _cost(date(2026, 1, 1), owner_team__name="recsys") == Decimal("99.00")
    assert list(Budget.objects.values_list("team__name", flat=True)) == ["recsys"]
    # A budget a person set on the team page is theirs, even at the demo's amount: purge keeps it.
    demo.load(today=TODAY, folder=tmp_path / "demo")
    services.budget_set(actor=grace, team=demo_org["teams"]["fraud-ml"], currency="USD", amount="6000")
    assert demo.purge()["budgets"] == 0
    assert Budget.objects.filter(team__name="fraud-ml").exists()


def test_the_demo_command_loads_costs_slos_and_scorecards_and_purges_the_costs(demo_org, settings):
    settings.PLINTH_PROMETHEUS_URL = ""  # no Prometheus: the SLOs say so, the rest loads
    out = StringIO()
    call_command("demo", "operations", stdout=out)
    text = out.getvalue()
    assert "Demo costs: cost export demo-focus-" in text and "fraud-ml budget set" in text
    assert "Demo SLOs: 0 evaluated, 4 with a problem (PLINTH_PROMETHEUS_URL is not set)" in text
    assert "Scorecards evaluated:" in text
    call_command("demo", "operations", stdout=out)
    assert "cost export already imported" in out.getvalue()
    call_command("demo", "purge-operations", stdout=out)
    assert "Removed the demo costs: " in out.getvalue()
    assert not CostLine.objects.exists() and not Budget.objects.exists()
