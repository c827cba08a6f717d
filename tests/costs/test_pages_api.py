"""Pages and API: what each reader sees (another team's private entity: left out and counted on lists,
404 on its own), CSV downloads with spreadsheet formulas neutralised, the upload page and endpoint
(platform admins; a missing column is a 400 at once; over the cap a 413), the entity tab and the
header figure in one query, and constant query counts."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Entity
from portal.costs import selectors
from portal.costs.models import CostImport

from .conftest import DETECTOR, HEADER, line, write_csv

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_the_overview_shows_per_currency_totals_charts_and_the_unallocated_bucket(costed):
    page = client_for(costed["users"]["alice"]).get("/costs/?month=2026-01")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="unallocated-USD">7.00<' in html
    assert 'data-testid="chart-by-team"' in html and "<svg" in html
    assert "Fraud detector" in html or "fraud-detector" in html
    # Titles on the page, as the tables beside the charts name them; identifiers in the CSV.
    team_chart = html.split('data-testid="chart-by-team"', 1)[1].split("</figure>", 1)[0]
    assert "Fraud ML" in team_chart and ">fraud-ml<" not in team_chart
    domain_chart = html.split('data-testid="chart-by-domain"', 1)[1].split("</figure>", 1)[0]
    assert "domain:default/" not in domain_chart and "Payments" in domain_chart
    assert '<span title="domain:default/payments">Payments</span>' in html
    csv_text = b"".join(client_for(costed["users"]["alice"]).get("/costs/?month=2026-01&format=csv")).decode()
    assert "domain:default/payments" in csv_text and "fraud-ml," in csv_text


def test_one_month_is_a_figure_and_the_monthly_line_starts_with_the_second(costed, tmp_path):
    from portal.costs import services

    alice = client_for(costed["users"]["alice"])
    for url, key in [("/costs/?month=2026-01", "trend"), ("/costs/teams/fraud-ml/?month=2026-01", "team-trend")]:
        html = alice.get(url).content.decode()
        card = html.split(f'data-testid="chart-{key}"', 1)[1].split("</figure>", 1)[0]
        assert "the only month imported so far" in card and "2026-01" in card and "<svg" not in card, url
    february = [line("80.00", tags={"plinth-entity": DETECTOR}, start="2026-02-03T00:00:00Z",
                     end="2026-02-04T00:00:00Z", period="2026-02-01T00:00:00Z")]
    assert services.import_now(path=write_csv(tmp_path / "feb.csv", february), provider="aws").status == "done"
    for url, key in [("/costs/?month=2026-02", "trend"), ("/costs/teams/fraud-ml/?month=2026-02", "team-trend")]:
        html = alice.get(url).content.decode()
        card = html.split(f'data-testid="chart-{key}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in card and "2026-01" in card and "2026-02" in card and "only month" not in card, url


def test_pages_make_a_constant_number_of_queries(costed, tmp_path):
    from portal.costs import services

    alice = client_for(costed["users"]["alice"])
    urls = ["/costs/?month=2026-01", "/costs/teams/fraud-ml/?month=2026-01", "/costs/portfolio/?month=2026-01",
            "/catalog/model/default/fraud-detector/cost/"]
    counts = {}
    for url in urls:
        alice.get(url)
        with CaptureQueriesContext(connection) as q:
            assert alice.get(url).status_code == 200
        counts[url] = len(q)
    more = [line(str(i), tags={"plinth-entity": ref}) for i, ref in enumerate(
        Entity.objects.values_list("ref", flat=True))] + [line("1", tags={"team": "fraud-ml"})]
    services.import_now(path=write_csv(tmp_path / "more.csv", more), provider="gcp")
    for url in urls:
        with CaptureQueriesContext(connection) as q:
            assert alice.get(url).status_code == 200
        assert len(q) == counts[url], url


def test_the_model_header_figure_costs_one_query(costed):
    entity = Entity.objects.get(ref=DETECTOR)
    with CaptureQueriesContext(connection) as q:
        figure = selectors.entity_header(entity)
    assert len(q) == 1 and [str(m) for m in figure] == ["135.00 USD"]
    html = client_for(costed["users"]["carol"]).get("/catalog/model/default/fraud-detector/").content.decode()
    assert 'data-testid="cost-badge"' in html and "135 USD/mo" in html


def test_the_cost_tab_shows_value_against_cost(costed):
    html = client_for(costed["users"]["carol"]).get("/catalog/model/default/fraud-detector/cost/").content.decode()
    assert "25,000.00 USD</strong> per month — Chargeback losses avoided" in html
    assert 'data-testid="roi-ratio">185.2×' in html


def test_another_teams_private_entity_is_404_and_counted_not_shown(costed):
    carol = client_for(costed["users"]["carol"])
    assert carol.get("/catalog/model/default/chargeback-predictor/cost/").status_code == 404
    assert carol.get("/api/v1/entities/by-name/model/default/chargeback-predictor/costs").status_code == 404
    page = carol.get("/costs/teams/fraud-ml/?month=2026-01").content.decode()
    assert "chargeback" not in page.lower() and 'data-testid="hidden-count">1 private entity' in page
    body = carol.get("/api/v1/costs?month=2026-01&group=entity").json()
    assert body["hidden"] == 1 and "model:default/chargeback-predictor" not in {i["key"] for i in body["items"]}
    alice = client_for(costed["users"]["alice"])
    body = alice.get("/api/v1/costs?month=2026-01&group=entity").json()
    assert body["hidden"] == 0 and "model:default/chargeback-predictor" in {i["key"] for i in body["items"]}


def test_the_api_groups_per_currency(costed):
    body = client_for(costed["users"]["grace"]).get("/api/v1/costs?month=2026-01&group=team").json()
    got = {(i["key"], i["currency"]): i["effective"] for i in body["items"]}
    assert float(got[("fraud-ml", "EUR")]) == 12
    assert float(got[("recsys", "USD")]) == pytest.approx(94.883721)
    for bad in ("month=2026-13", "month=jan", "group=planet"):
        response = client_for(costed["users"]["grace"]).get(f"/api/v1/costs?{bad}")
        assert response.status_code == 400, bad
    assert client_for(costed["users"]["grace"]).get("/costs/?month=2026-13").status_code == 400
    entity = client_for(costed["users"]["grace"]).get("/api/v1/entities/by-name/model/default/fraud-detector/costs")
    assert entity.json()["value"] == {"monthly": "25000", "currency": "USD", "kpi": "Chargeback losses avoided"}


def test_csv_downloads_neutralise_formulas_from_tags_and_names(demo_org, tmp_path):
    from portal.costs import services

    rows = [line("3", tags={"team": "=HYPERLINK(\"http://evil\",\"x\")"}),
            line("4", tags={"plinth-entity": "=cmd|' /C calc'!A0"})]
    services.import_now(path=write_csv(tmp_path / "inj.csv", rows), provider="aws")
    grace = client_for(demo_org["users"]["grace"])
    for url in ("/costs/?month=2026-01&format=csv", "/costs/portfolio/?month=2026-01&format=csv",
                "/costs/teams/fraud-ml/?month=2026-01&format=csv"):
        response = grace.get(url)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        for row in csv.reader(io.StringIO(response.content.decode())):
            assert not any(cell.startswith(("=", "+", "@")) for cell in row), (url, row)


def test_upload_page_queues_an_import_for_platform_admins_only(demo_org, tmp_path, django_capture_on_commit_callbacks):
    path = write_csv(tmp_path / "up.csv", [line("2")])
    alice = client_for(demo_org["users"]["alice"])
    with open(path, "rb") as f:
        assert alice.post("/costs/imports/", {"provider": "aws", "file": f}).status_code == 403
    grace = client_for(demo_org["users"]["grace"])
    with open(path, "rb") as f:
        response = grace.post("/costs/imports/", {"provider": "aws", "file": f})
    assert response.status_code == 302
    imp = CostImport.objects.get()
    assert imp.status == "queued" and imp.source == "upload" and imp.file_name == "up.csv"
    bad = write_csv(tmp_path / "bad.csv", [line("2")], header=[h for h in HEADER if h != "BillingCurrency"])
    with open(bad, "rb") as f:
        response = grace.post("/costs/imports/", {"provider": "aws", "file": f})
    assert response.status_code == 400
    assert "bad.csv, row 1: missing required FOCUS column BillingCurrency" in response.content.decode()
    assert CostImport.objects.count() == 1


def test_import_totals_are_money_like_every_costs_page(demo_org, tmp_path):
    """The import keeps exact totals (10 decimals, as the API answers them); the page formats them."""
    from portal.costs import services

    rows = [line("1234.50"), line("2000.00"), line("12", currency="EUR")]
    imp = services.import_now(path=write_csv(tmp_path / "fmt.csv", rows), provider="aws")
    assert imp.totals["USD"]["effective"] == "3234.5000000000"
    page = client_for(demo_org["users"]["grace"]).get("/costs/imports/").content.decode()
    cell = page.split('data-testid="import-totals">', 1)[1].split("</td>", 1)[0]
    assert cell == "12.00 EUR<br>3,234.50 USD"


def test_api_upload_answers_202_then_the_import_reads_back(demo_org, tmp_path):
    grace = client_for(demo_org["users"]["grace"])
    path = write_csv(tmp_path / "api.csv", [line("2")])
    with open(path, "rb") as f:
        response = grace.post("/api/v1/costs/imports", {"provider": "aws", "file": f})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["provider"] == "aws"
    from portal.costs import services

    services.run_import(body["id"])
    done = grace.get(f"/api/v1/costs/imports/{body['id']}").json()
    assert done["status"] == "done" and done["rows"] == 1 and done["periods"] == ["2026-01-01"]
    assert client_for(demo_org["users"]["alice"]).get(f"/api/v1/costs/imports/{body['id']}").status_code == 404
    assert grace.get("/api/v1/costs/imports/999999").status_code == 404
    with open(path, "rb") as f:
        response = grace.post("/api/v1/costs/imports", {"provider": "Not a name!", "file": f})
    assert response.status_code == 400 and "provider" in response.json()["error"]["details"]
    assert grace.post("/api/v1/costs/imports", {"provider": "aws"}).status_code == 400


def test_an_upload_over_the_cap_is_413_before_reading(demo_org, tmp_path, settings):
    settings.PLINTH_COSTS_MAX_UPLOAD_BYTES = 2048
    path = write_csv(tmp_path / "big.csv", [line(str(i)) for i in range(100)])
    grace = client_for(demo_org["users"]["grace"])
    with open(path, "rb") as f:
        assert grace.post("/api/v1/costs/imports", {"provider": "aws", "file": f}).status_code == 413
    assert not CostImport.objects.exists()


def test_team_admins_set_budgets_from_the_team_page(costed):
    grace = client_for(costed["users"]["grace"])
    empty = grace.get("/costs/teams/recsys/?month=2026-01").content.decode()
    assert 'pattern="[0-9]+(\\.[0-9]{1,2})?" placeholder="e.g. 12000"' in empty  # no budget: no value
    response = grace.post("/costs/teams/recsys/budget", {"amount": "100", "currency": "USD"})
    assert response.status_code == 302
    page = grace.get("/costs/teams/recsys/?month=2026-01").content.decode()
    assert "94.88</strong> of 100.00 USD" in page
    # The form edits the budget shown: its amount is the field's value, never a made-up placeholder.
    assert 'value="100.00" placeholder="e.g. 12000"' in page and 'placeholder="12000"' not in page
    carol = client_for(costed["users"]["carol"])  # recsys maintainer, not admin
    assert carol.post("/costs/teams/recsys/budget", {"amount": "5", "currency": "USD"}).status_code == 403
    assert grace.get("/costs/teams/no-such-team/").status_code == 404


def test_the_shared_split_reveals_nothing_of_another_teams_private_costs(costed):
    """Shared rows are visible to everyone (docs/finops.md, "Visibility"), so a split weighed by private
    entities' costs gave them away: from the pool, each team's share and each team's visible cost, carol
    (recsys) worked out fraud-ml's weight, 26.938776 × 80 ÷ (40 − 26.938776) = 165, minus the visible 135:
    exactly the 30 of fraud-ml's private chargeback-predictor. The split is weighed by costs everyone reads."""
    from decimal import Decimal

    from portal.costs import allocation
    from portal.costs.models import Allocation, CostLine

    from .conftest import PRIVATE

    carol = client_for(costed["users"]["carol"])

    def by_bucket(**params) -> tuple[dict, int]:
        body = carol.get("/api/v1/costs", {"month": "2026-01", "group": "bucket", "currency": "USD", **params}).json()
        return {i["key"]: Decimal(i["effective"]) for i in body["items"]}, body["hidden"]

    def derived_private() -> Decimal:
        pool = by_bucket()[0]["shared"]
        fraud, hidden = by_bucket(team="fraud-ml")
        recsys = by_bucket(team="recsys")[0]
        assert hidden == 1 and fraud["shared"] + recsys["shared"] == pool  # two teams; the parts add up exactly
        fraud_weight = fraud["shared"] * (recsys["entity"] + recsys["team"]) / recsys["shared"]
        return (fraud_weight - fraud.get("entity", 0) - fraud.get("team", 0)).quantize(Decimal("0.01"))

    assert derived_private() == 0  # was 30.00: the private model's cost
    shares = {a.owner_team_id: a.effective_cost for a in Allocation.objects.filter(bucket="shared")}
    # However much the private model costs, the shares do not move.
    CostLine.objects.filter(tags__contains=PRIVATE).update(billed_cost=Decimal("3000"), effective_cost=Decimal("3000"))
    allocation.allocate(["2026-01-01"])
    assert Allocation.objects.get(entity__ref=PRIVATE).effective_cost == Decimal("3000")
    assert {a.owner_team_id: a.effective_cost for a in Allocation.objects.filter(bucket="shared")} == shares
    assert derived_private() == 0
    # The visibility the allocation reads is the entity's at allocation time: made internal, its cost
    # weighs from the next allocation on (readers see it then anyway).
    Entity.objects.filter(ref=PRIVATE).update(visibility="internal")
    assert {a.owner_team_id: a.effective_cost for a in Allocation.objects.filter(bucket="shared")} == shares
    allocation.allocate(["2026-01-01"])
    fraud_ml = costed["teams"]["fraud-ml"].pk
    assert Allocation.objects.get(bucket="shared", owner_team_id=fraud_ml).effective_cost > shares[fraud_ml]
    assert by_bucket(team="fraud-ml")[1] == 0


def test_a_budget_form_amount_that_rounds_to_nothing_is_refused_naming_the_field(costed):
    from portal.costs.models import Budget

    grace = client_for(costed["users"]["grace"])
    response = grace.post("/costs/teams/recsys/budget", {"amount": "0.004", "currency": "USD"}, follow=True)
    assert response.status_code == 200
    assert "Amount: 0.004 rounds to 0.00" in response.content.decode()
    assert "Budget saved." not in response.content.decode() and not Budget.objects.exists()
