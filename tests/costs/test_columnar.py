"""The columnar CSV reader (pyarrow, a column at a time) against the row reader (csv, a value at a time):
for any file, either both give exactly the same stored tuples, or the columnar reader doubts and hands
over to the row reader, which then names the bad value. A hand-over in the middle of a file neither
drops nor repeats a row, and row numbers still count from the top of the file."""

from __future__ import annotations

import csv

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.costs import focus, services
from portal.costs.models import CostLine

from .conftest import HEADER, line, write_csv

CELLS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " 12.5", "12.5 ", "1_0", "١٢", "+3", ".5", "5.", "1e3", "1e400", "NaN", "-inf", "-0.0",
                     "credit", " Usage", "usd", "EUR", "2026-01-05", "2026-01-05T10:00:00+05:30",
                     "2026-01-05T00:00:00", "2026-02-30T00:00:00Z", "correction", "Correction ",
                     '{"team": "a", "n": 1}', '{"b": true}', '{"a": [1]}', "[]", '"quoted"', "a\nb", "=1+1"]))
COLUMNS = ["BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
           "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ServiceName", "ServiceCategory",
           "ResourceId", "RegionId", "Tags"]


def both(path, batch=2):
    """(columnar tuples or "doubt", row tuples or the FocusError text, each reader's months)."""
    col_norm, row_norm = focus.Normaliser(path.name, postgres=False), focus.Normaliser(path.name, postgres=False)
    try:
        columnar = [r for rows in focus._read_csv_columns(path, path.name, col_norm, (7, 3)) for r in rows]
    except focus._Doubt:
        columnar = "doubt"
    try:
        rows = [r for b in focus._read_csv_rows(path, path.name, row_norm, (7, 3), batch) for r in b]
    except focus.FocusError as exc:
        rows = str(exc)
    return columnar, rows, col_norm, row_norm


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(COLUMNS), CELLS), max_size=4))
def test_the_columnar_reader_agrees_with_the_row_reader_or_hands_over(tmp_path_factory, cells):
    rows = [line(str(i + 1), resource=f"r-{i % 2}", tags={"team": "t"} if i % 2 else None) for i in range(4)]
    for row, column, value in cells:
        rows[row] = rows[row] | {column: value.replace("\x00", "")}
    path = write_csv(tmp_path_factory.mktemp("col") / "p.csv", rows)
    columnar, by_rows, col_norm, row_norm = both(path)
    if isinstance(by_rows, str):
        assert columnar == "doubt", f"the columnar reader accepted a file the row reader refuses: {by_rows}"
    elif columnar != "doubt":
        assert columnar == by_rows
        assert (col_norm.periods, col_norm.months) == (row_norm.periods, row_norm.months)
        assert col_norm.totals == row_norm.totals  # Decimal equality: 1.5 == 1.5000000000


@pytest.mark.parametrize("text", [
    'a,"b"c,d\n',  # text after a closing quote
    '"unterminated,1\n',
    "1,2\n",  # a short row
    "\n\n",  # blank lines only
    "\xff\xfe",  # not UTF-8 (written as latin-1 below)
])
def test_odd_csv_shapes_are_doubted_or_agreed(tmp_path, text):
    path = write_csv(tmp_path / "p.csv", [line("1"), line("2")])
    with open(path, "a", encoding="latin-1", newline="") as f:
        f.write(text)
    columnar, by_rows, _, _ = both(path)
    assert columnar == "doubt" or (not isinstance(by_rows, str) and columnar == by_rows), (columnar, by_rows)


def test_the_bom_quoted_newlines_and_blank_lines_read_alike(tmp_path):
    path = tmp_path / "p.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HEADER, extrasaction="ignore")
        writer.writeheader()
        writer.writerow(line("1", service="Amazon\nSageMaker", tags='{"team": "a,b"}'))
        f.write("\r\n")
        writer.writerow(line("2.50", resource="arn:x", tags={"plinth-entity": "model:default/x"}))
    columnar, by_rows, _, _ = both(path)
    assert columnar != "doubt" and columnar == by_rows and len(columnar) == 2
    assert columnar[0][12] == "Amazon\nSageMaker" and columnar[0][-1] == '{"team":"a,b"}'


def test_a_hand_over_mid_file_keeps_every_row_once(db, tmp_path, small_blocks):
    rows = [line(f"{i + 1}.25", resource=f"r-{i}") for i in range(12)]
    rows[7] = rows[7] | {"BilledCost": " 8.25 "}  # valid for the row reader; the columnar one doubts
    path = write_csv(tmp_path / "p.csv", rows)
    batches = list(focus.read(path, "csv", "p.csv", prefix=(1, 1), postgres=False, batch=3))
    assert len(batches) > 2
    assert [r[14] for b in batches for r in b] == [f"r-{i}" for i in range(12)]
    imp = services.import_now(path=path, provider="aws")
    assert imp.status == "done" and imp.rows == 12
    assert sorted(CostLine.objects.values_list("resource_id", flat=True)) == sorted(f"r-{i}" for i in range(12))


def test_a_bad_row_after_a_hand_over_is_named_by_its_row_in_the_file(db, tmp_path, small_blocks):
    rows = [line(f"{i + 1}") for i in range(12)]
    rows[3] = rows[3] | {"EffectiveCost": "1_000"}  # doubted by the columnar reader, refused by the row one
    rows[9] = rows[9] | {"BillingCurrency": "dollars"}
    path = write_csv(tmp_path / "p.csv", rows)
    imp = services.import_now(path=path, provider="aws")
    assert imp.status == "failed" and imp.error.startswith("p.csv, row 5, column EffectiveCost: not a number")
    rows[3] = line("4")
    imp = services.import_now(path=write_csv(tmp_path / "q.csv", rows), provider="aws")
    assert imp.status == "failed" and imp.error.startswith("q.csv, row 11, column BillingCurrency:"), imp.error
    assert not CostLine.objects.exists()


@pytest.mark.parametrize("small_amount", ["0.25", "0.123456789012"])  # the second: beyond decimal128(38, 10)
def test_import_totals_are_exact_sums_per_currency_at_the_stored_scale(db, tmp_path, small_blocks, small_amount):
    rows = [line("99999999999999000", currency="USD") for _ in range(6)]
    rows += [line(small_amount, effective="-0.5", category="Credit" if small_amount == "0.25" else "Usage",
                  currency="EUR") for _ in range(5)]
    if small_amount == "0.25":
        rows = [r | {"BilledCost": "-0.25"} if r["BillingCurrency"] == "EUR" else r for r in rows]
    imp = services.import_now(path=write_csv(tmp_path / "p.csv", rows), provider="aws")
    assert imp.status == "done", imp.error
    assert imp.totals["USD"] == {"billed": "599999999999994000.0000000000",
                                 "effective": "599999999999994000.0000000000", "lines": 6}
    eur = "-1.2500000000" if small_amount == "0.25" else "0.6172839451"  # 0.61728394506 rounded half-even
    assert imp.totals["EUR"] == {"billed": eur, "effective": "-2.5000000000", "lines": 5}


@pytest.mark.django_db(transaction=True)
def test_an_import_outside_a_test_transaction_is_allocated(tmp_path):
    """As in the worker: no outer transaction, so the allocation's sorts really go to disk."""
    from portal.costs.models import Allocation

    imp = services.import_now(path=write_csv(tmp_path / "p.csv", [line("95.00"), line("5.00")]), provider="aws")
    assert imp.status == "done", imp.error
    assert [(a.bucket, a.effective_cost) for a in Allocation.objects.all()] == [("unallocated", 100)]
