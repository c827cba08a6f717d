"""Importing FOCUS exports: CSV and Parquet read alike, a re-import of a provider's billing period
replaces it (never doubles), a bad file changes nothing and names file, row and column, credits keep
their sign, currencies are never added together, times are normalised to UTC — and the allocation
rules of docs/finops.md, the budget alerts and the ROI declaration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from catalog.models import Entity
from portal.costs import allocation, focus, roi, selectors, services
from portal.costs.models import Allocation, Bucket, Budget, BudgetAlert, CostImport, CostLine
from portal.governance.models import Notification

from .conftest import DETECTOR, PRIVATE, RECSYS_MODEL, annotate, line, write_csv, write_parquet

pytestmark = pytest.mark.django_db
JAN = date(2026, 1, 1)


def amounts(**filters) -> dict:
    return {(a.bucket, a.entity.ref if a.entity_id else (a.owner_team.name if a.owner_team_id else None), a.currency):
            a.effective_cost for a in Allocation.objects.filter(**filters).select_related("entity", "owner_team")}


def test_lines_are_allocated_by_tag_resource_mapping_team_and_shared_rule(costed):
    got = amounts(month=JAN)
    assert got[(Bucket.ENTITY, DETECTOR, "USD")] == Decimal("135")  # 100 by ResourceId + 40 by tag − 5 credit
    assert got[(Bucket.ENTITY, PRIVATE, "USD")] == Decimal("30")
    assert got[(Bucket.ENTITY, RECSYS_MODEL, "USD")] == Decimal("60")
    assert got[(Bucket.TEAM, "recsys", "USD")] == Decimal("20")
    assert got[(Bucket.TEAM, "fraud-ml", "EUR")] == Decimal("12")
    assert got[(Bucket.UNALLOCATED, None, "USD")] == Decimal("7")
    # Shared 40 USD split by allocated USD cost everyone may read: fraud-ml 135 (not its private 30), recsys 80.
    assert got[(Bucket.SHARED, "fraud-ml", "USD")] == Decimal("25.116279")
    assert got[(Bucket.SHARED, "recsys", "USD")] == Decimal("14.883721")
    usd = sum(v for (_, _, c), v in got.items() if c == "USD")
    assert usd == Decimal("292")  # every effective cost in the file (billed: 302), nothing lost or doubled
    detector = Allocation.objects.get(entity__ref=DETECTOR)
    assert detector.domain == "domain:default/payments" and detector.kind == "model"
    assert detector.billed_cost == Decimal("145")


def test_a_reimport_of_the_same_period_replaces_and_never_doubles(costed, tmp_path):
    before = CostLine.objects.count()
    path = write_csv(tmp_path / "again.csv", [line("100.00", tags={"plinth-entity": DETECTOR})])
    imp = services.import_now(path=path, provider="aws")
    assert imp.status == "done" and imp.periods == ["2026-01-01"]
    assert CostLine.objects.count() == 1 < before
    assert amounts(month=JAN) == {(Bucket.ENTITY, DETECTOR, "USD"): Decimal("100")}
    imp2 = services.import_now(path=path, provider="aws")
    assert CostLine.objects.count() == 1 and imp2.totals == {"USD": {"billed": imp2.totals["USD"]["billed"],
                                                                     "effective": imp2.totals["USD"]["effective"],
                                                                     "lines": 1}}
    assert Decimal(imp2.totals["USD"]["effective"]) == Decimal("100")


def test_a_reimport_reallocates_the_months_only_the_replaced_lines_had(db, tmp_path, small_blocks):
    feb = date(2026, 2, 1)
    late = line("8", start="2026-02-01T00:00:00Z", end="2026-02-01T01:00:00Z", tags={"team": "x"})  # January's bill
    first = [line("1", resource=f"r-{i}") for i in range(6)] + [late]
    services.import_now(path=write_csv(tmp_path / "first.csv", first), provider="aws")
    assert amounts(month=feb) == {(Bucket.UNALLOCATED, None, "USD"): Decimal("8")}
    second = [line("2", resource=f"r-{i}") for i in range(6)]  # several columnar batches, one period
    imp = services.import_now(path=write_csv(tmp_path / "second.csv", second), provider="aws")
    assert imp.status == "done" and imp.rows == 6
    assert CostLine.objects.count() == 6 and set(CostLine.objects.values_list("cost_import", flat=True)) == {imp.pk}
    assert amounts(month=feb) == {} and amounts(month=JAN) == {(Bucket.UNALLOCATED, None, "USD"): Decimal("12")}


def test_another_provider_or_period_is_kept(costed, tmp_path):
    lines = CostLine.objects.count()
    services.import_now(path=write_csv(tmp_path / "gcp.csv", [line("5", tags={"team": "recsys"})]), provider="gcp")
    feb = line("9", period="2026-02-01T00:00:00Z", start="2026-02-02T00:00:00Z", end="2026-02-03T00:00:00Z")
    services.import_now(path=write_csv(tmp_path / "feb.csv", [feb]), provider="aws")
    assert CostLine.objects.count() == lines + 2
    assert amounts(month=date(2026, 2, 1)) == {(Bucket.UNALLOCATED, None, "USD"): Decimal("9")}


def test_a_bad_row_imports_nothing_and_names_file_row_and_column(costed, tmp_path):
    lines = list(CostLine.objects.values_list("id", flat=True))
    allocations = amounts()
    rows = [line("1")] * 3 + [line("twelve")]
    imp = services.import_now(path=write_csv(tmp_path / "bad.csv", rows), provider="aws")
    assert imp.status == "failed"
    assert imp.error == "bad.csv, row 5, column BilledCost: not a number: 'twelve'"
    assert list(CostLine.objects.values_list("id", flat=True)) == lines
    assert amounts() == allocations


def test_lines_that_add_up_past_what_a_total_may_be_import_nothing(costed, tmp_path):
    """Each line is under the 1e17 a line may be, their sum is over 1e18: allocations and budget alerts store
    sums in the same NUMERIC(28, 10) columns, which PostgreSQL refused after the import had committed
    (and the allocation was retried in vain). The file is refused whole, naming the currency."""
    lines = list(CostLine.objects.values_list("id", flat=True))
    imp = services.import_now(path=write_csv(tmp_path / "huge.csv", [line("90000000000000000")] * 12), provider="aws")
    assert imp.status == "failed", imp.error
    assert imp.error == ("huge.csv: the USD lines add up to 1.080e+18, more than the 1e+18 a total may be "
                         "(a unit or scale error?)")
    assert list(CostLine.objects.values_list("id", flat=True)) == lines


def test_many_statements_of_lines_are_written_whole_and_a_late_bad_row_undoes_them(db, tmp_path):
    """More lines than two of SQLite's multi-row statements (1,927 lines each) plus a remainder, read
    ahead by the reader's thread: every line arrives once with its amount; a bad value after several
    batches were written rolls them all back and is named."""
    many = 2 * 1927 + 11
    rows = [line(f"{i % 7}.25", resource=f"r-{i}") for i in range(many)]
    imp = services.import_now(path=write_csv(tmp_path / "many.csv", rows), provider="aws", allocate=False)
    assert imp.status == "done" and imp.rows == many == CostLine.objects.count()
    assert len(set(CostLine.objects.values_list("resource_id", flat=True))) == many
    assert sum(CostLine.objects.values_list("billed_cost", flat=True)) == sum(Decimal(f"{i % 7}.25") for i in range(many))
    bad = rows + [line("1")] * 20_000 + [line("twelve")]
    imp = services.import_now(path=write_csv(tmp_path / "late.csv", bad), provider="aws", allocate=False)
    assert imp.status == "failed" and f"row {len(bad) + 1}, column BilledCost" in imp.error
    assert CostLine.objects.count() == many  # the first import's lines, untouched


@pytest.mark.parametrize(("change", "message"), [
    ({"ChargePeriodStart": "5 Jan 2026"}, "row 2, column ChargePeriodStart: not an ISO 8601 date-time: '5 Jan 2026'"),
    ({"EffectiveCost": "NaN"}, "row 2, column EffectiveCost: out of range: 'NaN'"),
    ({"BilledCost": "1_000"}, "row 2, column BilledCost: not a number: '1_000'"),
    ({"BilledCost": ""}, "row 2, column BilledCost: empty (a number is required)"),
    ({"BillingCurrency": "dollars"}, "row 2, column BillingCurrency: not an ISO 4217 currency code: 'dollars'"),
    ({"ChargeCategory": "Refund"}, "row 2, column ChargeCategory: not a FOCUS charge category: 'Refund'"),
    ({"ChargeCategory": "Credit", "BilledCost": "5", "EffectiveCost": "5"},
     "row 2, column BilledCost: a Credit must not be positive"),
    ({"ChargePeriodEnd": "2026-01-04T00:00:00Z"}, "row 2, column ChargePeriodEnd: before ChargePeriodStart"),
    ({"Tags": "team=fraud"}, "row 2, column Tags: not a JSON object of key-value pairs"),
    ({"Tags": '{"team": {"nested": 1}}'}, "row 2, column Tags: the value of 'team' is not a string"),
    ({"ServiceName": ""}, "row 2, column ServiceName: empty (a value is required)"),
    # PostgreSQL's text cannot hold NUL: its COPY failed unnamed ("the import failed (DataError)").
    ({"ServiceName": "Amazon\x00SageMaker"}, "row 2, column ServiceName: must not contain a NUL character"),
    ({"ResourceId": "\x00"}, "row 2, column ResourceId: must not contain a NUL character"),
    ({"Tags": '{"team": "recsys\\u0000"}'}, "row 2, column Tags: must not contain a NUL character"),
    # float() reads other scripts' digits: stored as text, SQLite summed them as 0 (PostgreSQL refused the COPY).
    ({"BilledCost": "\u0661\u0662"}, "row 2, column BilledCost: not a number: '\u0661\u0662'"),
    ({"ChargePeriodStart": "0001-01-01T00:30:00+01:00"},  # no UTC time: an OverflowError, unnamed, before
     "row 2, column ChargePeriodStart: outside the years 1–9999 in UTC: 0001-01-01T00:30:00+01:00"),
])
def test_each_bad_value_is_named(db, tmp_path, change, message):
    path = write_csv(tmp_path / "x.csv", [line("1") | change])
    with pytest.raises(focus.FocusError) as exc:
        for _ in focus.read(path, "csv", "x.csv", prefix=(1, 1), postgres=False, batch=10):
            pass
    assert str(exc.value).startswith("x.csv, " + message)


def test_a_nul_character_is_named_and_imports_nothing(costed, tmp_path):
    """The same answer on SQLite (which stored it) and PostgreSQL (whose text refuses it): test_on_postgres."""
    lines = list(CostLine.objects.order_by("id").values_list("id", "effective_cost"))
    for change, column in [({"ServiceName": "AWS\x00Support"}, "ServiceName"),
                           ({"Tags": '{"team\\u0000": "recsys"}'}, "Tags")]:
        rows = [line("1")] * 3 + [line("2") | change]
        imp = services.import_now(path=write_csv(tmp_path / "nul.csv", rows), provider="aws")
        assert imp.status == "failed"
        assert imp.error == f"nul.csv, row 5, column {column}: must not contain a NUL character"
        assert list(CostLine.objects.order_by("id").values_list("id", "effective_cost")) == lines


def test_unnamed_columns_are_ignored_while_their_cells_are_empty(db, tmp_path, small_blocks):
    """A spreadsheet saves a CSV with empty trailing columns: two had one name, "", which "appeared twice".
    Columns with no name are ignored like any column Plinth does not read — but only while empty: a value
    under no name is data nobody can place, and is named."""
    header = [*write_csv.__globals__["HEADER"], "", " "]
    rows = [line(str(i + 1)) | {"": "", " ": ""} for i in range(6)]
    rows[4] |= {"BilledCost": " 5"}  # the row reader takes over here (a space around an amount)
    imp = services.import_now(path=write_csv(tmp_path / "sheet.csv", rows, header=header), provider="aws")
    assert imp.status == "done" and imp.rows == 6, imp.error
    rows[5] |= {" ": "x"}
    imp = services.import_now(path=write_csv(tmp_path / "sheet.csv", rows, header=header), provider="aws")
    assert imp.status == "failed" and CostLine.objects.count() == 6
    assert imp.error == (f"sheet.csv, row 7, column {len(header)}: a value in a column with no name in the header "
                         "(name the column in the header, or leave its cells empty)")
    # Named columns that appear twice are still refused, naming the column.
    path = write_csv(tmp_path / "twice.csv", [line("1")], header=[*header[:-2], "Tags"])
    with pytest.raises(focus.FocusError, match=r"^twice.csv, row 1: the column Tags appears twice$"):
        focus.read_header(path, "csv", "twice.csv")


def test_unnamed_parquet_columns_are_ignored_while_empty(db, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = write_parquet(tmp_path / "p.parquet", [line(str(i + 1)) for i in range(4)])  # row groups of 2
    table = pq.read_table(path)
    pq.write_table(table.append_column("", pa.array([None, "", None, None], pa.string())), path, row_group_size=2)
    imp = services.import_now(path=path, provider="aws")
    assert imp.status == "done" and imp.rows == 4, imp.error
    width = table.num_columns + 1
    pq.write_table(table.append_column("", pa.array([None, "", None, "x"], pa.string())), path, row_group_size=2)
    imp = services.import_now(path=path, provider="aws")
    assert imp.status == "failed" and imp.error.startswith(f"p.parquet, row 5, column {width}: a value in a column with no name")


def test_missing_required_columns_are_all_named_before_anything_is_queued(db, tmp_path):
    header = [c for c in write_csv.__globals__["HEADER"] if c not in ("EffectiveCost", "ChargeCategory")]
    path = write_csv(tmp_path / "old.csv", [line("1")], header=header)
    with pytest.raises(focus.FocusError, match=r"old.csv, row 1: missing required FOCUS columns EffectiveCost, "
                                               r"ChargeCategory"):
        services.import_queue(source_path=path, file_name="old.csv", provider="aws", source="command")
    assert not CostImport.objects.exists()


def test_empty_and_header_only_files_are_refused(db, tmp_path):
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(focus.FocusError, match="empty.csv: the file is empty"):
        services.import_now(path=tmp_path / "empty.csv", provider="aws")
    imp = services.import_now(path=write_csv(tmp_path / "head.csv", []), provider="aws")
    assert imp.status == "failed" and imp.error == "head.csv: no data rows after the header"


def test_odd_time_zones_are_normalised_to_utc_and_months_follow_utc(db, tmp_path):
    rows = [line("1", start="2026-01-31T20:00:00-05:00", end="2026-01-31T21:00:00-05:00"),  # 01:00 UTC, Feb 1
            line("2", start="2026-01-15T10:00:00+05:45", end="2026-01-15T11:00:00+05:45"),  # Kathmandu
            line("3", start="2026-01-20", end="2026-01-21")]  # a date: midnight UTC
    imp = services.import_now(path=write_csv(tmp_path / "tz.csv", rows), provider="aws")
    assert imp.status == "done", imp.error
    got = {str(c.billed_cost.normalize()): (c.month, c.charge_start) for c in CostLine.objects.all()}
    assert got["1"][0] == date(2026, 2, 1) and got["1"][1].isoformat() == "2026-02-01T01:00:00+00:00"
    assert got["2"][1].isoformat() == "2026-01-15T04:15:00+00:00"
    assert got["3"][1].isoformat() == "2026-01-20T00:00:00+00:00"


def test_currencies_are_never_added_together(costed):
    totals = selectors.month_totals(costed["users"]["grace"], JAN)
    assert set(totals) == {"EUR", "USD"}
    assert totals["EUR"]["total"] == Decimal("12") and totals["USD"]["total"] == Decimal("292")
    imp = CostImport.objects.get()
    assert set(imp.totals) == {"EUR", "USD"}


def test_parquet_reads_like_csv(demo_org, tmp_path):
    rows = [line("100.00", resource="r-1", tags={"plinth-entity": DETECTOR, "team": "fraud-ml"}),
            line("-2.5", category="Credit", tags={"plinth-entity": DETECTOR}),
            line("4.25", start="2026-01-31T23:30:00Z", end="2026-02-01T00:30:00Z", tags={"team": "recsys"})]
    parquet = services.import_now(path=write_parquet(tmp_path / "p.parquet", rows), provider="aws")
    assert parquet.status == "done" and parquet.format == "parquet", parquet.error
    from_parquet = amounts(month=JAN)
    csv_import = services.import_now(path=write_csv(tmp_path / "p.csv", rows), provider="aws")
    assert csv_import.status == "done" and amounts(month=JAN) == from_parquet
    assert from_parquet[(Bucket.ENTITY, DETECTOR, "USD")] == Decimal("97.5")
    assert CostLine.objects.count() == 3  # the CSV replaced the Parquet import's period


def test_a_damaged_parquet_file_is_named(db, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(focus.FocusError, match="broken.parquet: not a readable Parquet file"):
        services.import_now(path=path, provider="aws")


def test_the_management_command_imports_and_reports(demo_org, tmp_path, capsys):
    path = write_csv(tmp_path / "cmd.csv", [line("3", tags={"team": "recsys"})])
    call_command("costs", "import", str(path), "--provider", "aws")
    assert '"status": "done"' in capsys.readouterr().out
    with pytest.raises(CommandError, match="cmd.csv, row 2, column RegionId: longer than 2000 characters"):
        call_command("costs", "import", str(write_csv(path, [line("3", region="x" * 2001)])), "--provider", "aws")
    with pytest.raises(CommandError, match="provider"):
        call_command("costs", "import", str(path), "--provider", "AWS billing!")


def test_a_descriptor_change_moves_cost_on_reallocation(costed):
    annotate(RECSYS_MODEL, **{"plinth.dev/cost-resource-ids": "i-unallocated"})
    assert amounts(month=JAN)[(Bucket.UNALLOCATED, None, "USD")] == Decimal("7")
    entity = annotate(DETECTOR, **{"plinth.dev/cost-resource-ids": ""})  # the mapping removed
    allocation.allocate(None)
    assert amounts(month=JAN)[(Bucket.ENTITY, DETECTOR, "USD")] == Decimal("40")  # only the tagged line
    assert amounts(month=JAN)[(Bucket.UNALLOCATED, None, "USD")] == Decimal("102")
    assert entity.pk


def test_a_tag_naming_no_entity_falls_through_to_the_team_tag(demo_org, tmp_path):
    rows = [line("8", tags={"plinth-entity": "model:default/ghost", "team": "recsys"}),
            line("9", tags={"plinth-entity": "fraud-detector"})]  # a bare name, unique in the catalog
    services.import_now(path=write_csv(tmp_path / "t.csv", rows), provider="aws")
    got = amounts(month=JAN)
    assert got[(Bucket.TEAM, "recsys", "USD")] == Decimal("8")
    assert got[(Bucket.ENTITY, DETECTOR, "USD")] == Decimal("9")


def test_private_entities_of_other_teams_are_left_out_and_counted(costed):
    carol = costed["users"]["carol"]  # recsys
    alice = costed["users"]["alice"]  # fraud-ml
    assert selectors.month_totals(carol, JAN)["USD"]["total"] == Decimal("262")  # 292 − the private 30
    assert selectors.overview(carol, JAN, "USD")["hidden"] == 1
    assert selectors.month_totals(alice, JAN)["USD"]["total"] == Decimal("292")
    assert selectors.overview(alice, JAN, "USD")["hidden"] == 0


def test_budget_alerts_fire_once_per_threshold_per_month(costed):
    alice = costed["users"]["alice"]
    frank = costed["users"]["frank"]  # fraud-ml reviewer: not a team admin
    team = costed["teams"]["fraud-ml"]
    with pytest.raises(Exception, match="admins"):
        services.budget_set(actor=alice, team=team, currency="USD", amount="200")
    grace = costed["users"]["grace"]
    services.budget_set(actor=grace, team=team, currency="USD", amount="200")
    now = datetime(2026, 1, 20, tzinfo=UTC)
    # fraud-ml this month: 135 + 30 + shared 25.12 = 190.12 USD → 95 %: the 80 % alert only
    assert services.check_budgets(now=now) == 1
    assert services.check_budgets(now=now) == 0
    assert list(BudgetAlert.objects.values_list("threshold", flat=True)) == [80]
    notes = Notification.objects.filter(kind="cost-budget")
    assert notes.filter(user=alice).count() == 1 and notes.filter(user=frank).count() == 1
    assert "80% of its January 2026 budget: 190.12 of 200.00 USD" in notes.first().message
    Budget.objects.filter(team=team).update(amount=Decimal("150"))
    assert services.check_budgets(now=now) == 1  # 100 % now; 80 % is not sent again
    assert services.check_budgets(now=now + timedelta(days=20)) == 0  # February: no spend yet
    assert sorted(BudgetAlert.objects.values_list("threshold", flat=True)) == [80, 100]


def test_a_budget_needs_a_currency_and_a_positive_amount(costed):
    grace, team = costed["users"]["grace"], costed["teams"]["recsys"]
    for currency, amount, field in [("usd dollars", "1", "currency"), ("USD", "-4", "amount"), ("USD", "lots", "amount")]:
        with pytest.raises(Exception) as exc:
            services.budget_set(actor=grace, team=team, currency=currency, amount=amount)
        assert field in exc.value.message_dict
    assert services.budget_set(actor=grace, team=team, currency="usd", amount="1000").currency == "USD"
    assert services.budget_set(actor=grace, team=team, currency="USD", amount="0") is None
    assert not Budget.objects.exists()


def test_a_budget_that_rounds_to_nothing_is_refused_not_saved_as_zero(costed):
    """Budgets are kept in cents: 0.004 was checked as above 0, then stored as 0.00, and every threshold of
    a zero budget is reached at once (both alerts the next hour). Rounded first, it is refused."""
    grace, team = costed["users"]["grace"], costed["teams"]["fraud-ml"]
    for amount in ("0.004", "0.005", " 0.0001 ", "1e-9"):
        with pytest.raises(ValidationError) as exc:
            services.budget_set(actor=grace, team=team, currency="USD", amount=amount)
        assert "0.01" in " ".join(exc.value.message_dict["amount"]), amount
    assert not Budget.objects.exists()
    assert services.check_budgets(now=datetime(2026, 1, 20, tzinfo=UTC)) == 0 and not BudgetAlert.objects.exists()
    assert services.budget_set(actor=grace, team=team, currency="USD", amount="0.006").amount == Decimal("0.01")
    with pytest.raises(ValidationError) as exc:  # rounds up to 10^17: as refused as 10^17 itself
        services.budget_set(actor=grace, team=team, currency="USD", amount="99999999999999999.999")
    assert "amount" in exc.value.message_dict


@pytest.mark.parametrize(("annotations", "ok", "error"), [
    ({"plinth.dev/value-monthly": "25000 USD", "plinth.dev/value-kpi": "Losses avoided"}, True, ""),
    ({"plinth.dev/value-monthly": "25,000.50 eur", "plinth.dev/value-kpi": "Losses avoided"}, True, ""),
    ({"plinth.dev/value-monthly": "lots", "plinth.dev/value-kpi": "x"}, False, "expected '<amount per month> <currency>'"),
    ({"plinth.dev/value-monthly": "-5 USD", "plinth.dev/value-kpi": "x"}, False, "expected"),
    ({"plinth.dev/value-monthly": "5 USD"}, False, "plinth.dev/value-kpi: name the KPI"),
    ({}, False, ""),
])
def test_the_declared_value_is_validated(annotations, ok, error):
    value = roi.declared_value(annotations)
    assert value.ok is ok and error in value.error


def test_the_cost_fact_and_a_scorecard_check_reading_it(costed, tmp_path, settings):
    from portal.scorecards import facts
    from portal.scorecards import services as scorecard_services
    from portal.scorecards.models import Result
    from tests.scorecards.conftest import write

    ids = dict(Entity.objects.filter(ref__in=[DETECTOR, RECSYS_MODEL, "model:default/churn-predictor"])
               .values_list("ref", "id"))
    got = selectors.scorecard_facts(list(ids.values()))
    assert got[ids[DETECTOR]] == {"monthly": 135.0, "currency": "USD", "month": "2026-01", "value_monthly": 25000.0,
                                  "roi": 185.185}
    ranker = got[ids[RECSYS_MODEL]]  # the demo ranker declares 18,000 USD a month (catalog/demo/recsys)
    assert ranker["value_monthly"] == 18000.0 and ranker["roi"] == round(18000 / ranker["monthly"], 3)
    assert ids["model:default/churn-predictor"] not in got
    rows = facts.entity_rows(Entity.objects.filter(id__in=ids.values()))
    by_ref = {r["ref"]: f for r, f in zip(rows, facts.gather(rows), strict=True)}
    assert by_ref[DETECTOR]["cost"]["roi"] == 185.185 and by_ref["model:default/churn-predictor"]["cost"] is None
    folder = tmp_path / "cards"
    settings.PLINTH_SCORECARDS_DIR = folder
    write(folder, "value.yaml", "name: value\ntitle: Pays for itself\nfilter: {kinds: [model]}\nlevels: [Bronze]\n"
          "checks:\n  - {id: roi, level: Bronze, rule: roi.rego, reads: [cost], message: costs more than it earns}\n")
    write(folder, "checks/roi.rego", "package plinth.checks.roi\n\nimport rego.v1\n\n"
          "pass(f) if {\n  is_number(f.cost.roi)\n  f.cost.roi >= 1\n}\n")
    scorecard_services.evaluate_entities(entity_ids=list(ids.values()))
    level = dict(Result.objects.filter(scorecard="value").values_list("entity__ref", "level"))
    assert level[DETECTOR] == "Bronze"
    assert level[RECSYS_MODEL] == ("Bronze" if ranker["roi"] >= 1 else "")
    assert level["model:default/churn-predictor"] == ""  # fail closed without data


def test_a_queued_file_waits_in_the_shared_storage_and_is_removed_once_imported(costed, tmp_path, settings,
                                                                              monkeypatch):
    """Queued files live in the default storage (any worker may import them), never on the queuing node's
    disk; the command's relative path is still a local file, not a storage name."""
    from django.core.files.storage import storages

    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "store")}}}
    source = write_csv(tmp_path / "queued.csv", [line("7.00", tags={"plinth-entity": DETECTOR})])
    imp = services.import_queue(source_path=source, file_name="queued.csv", provider="aws", source="upload")
    assert not source.exists(), "moved away from the node it arrived on"
    assert imp.path.startswith(services.STORED_PREFIX) and storages["default"].exists(imp.path)
    done = services.run_import(imp.pk)
    assert (done.status, done.rows, done.path) == ("done", 1, "")
    assert not storages["default"].exists(imp.path)

    gone = services.import_queue(source_path=write_csv(tmp_path / "gone.csv", [line("1")]), file_name="gone.csv",
                                 provider="aws", source="upload")
    storages["default"].delete(gone.path)
    failed = services.run_import(gone.pk)
    assert failed.status == "failed" and "the uploaded file is gone" in failed.error

    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "relative.csv", [line("3.00", tags={"plinth-entity": DETECTOR})])
    assert services.import_now(path=Path("relative.csv"), provider="aws").status == "done"
    assert (tmp_path / "relative.csv").exists(), "the command leaves its file where it is"
