"""Property-based bad input: whatever is written into a FOCUS cell, the import either succeeds with the
value read as documented or fails naming the file, the row and the column — never another exception,
and a failed import leaves the previous data exactly as it was."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.costs import focus, services
from portal.costs.models import CostImport, CostLine

from .conftest import line, write_csv

pytestmark = pytest.mark.django_db

COLUMNS = ["BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingPeriodStart", "ChargePeriodStart",
           "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ServiceName", "ResourceId", "Tags"]
junk = st.one_of(st.text(max_size=40), st.sampled_from(["", "NaN", "-inf", "1e400", "1_0", "=1+1", "{}", "[]",
                                                        '{"a": [1]}', "2026-02-30T00:00:00Z", "Credit", "usd"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(COLUMNS), value=junk, row=st.integers(min_value=0, max_value=4))
def test_any_cell_value_imports_or_is_named_and_changes_nothing(db, tmp_path_factory, column, value, row):
    folder = tmp_path_factory.mktemp("prop")
    services.import_now(path=write_csv(folder / "base.csv", [line("1", tags={"team": "x"})]), provider="aws")
    before = list(CostLine.objects.order_by("id").values_list("id", "billed_cost"))
    rows = [line(str(i + 2)) for i in range(5)]
    rows[row] = rows[row] | {column: value}
    try:
        imp = services.import_now(path=write_csv(folder / "p.csv", rows), provider="aws")
    except focus.FocusError as exc:  # the header check cannot fail here: only row errors are possible
        raise AssertionError(f"unexpected header error {exc}") from exc
    if imp.status == "failed":
        # A value can also break a rule about another column: a start after the end, a positive Credit.
        named = {column} | {"ChargePeriodStart": {"ChargePeriodEnd"}, "ChargeCategory": {"BilledCost"}}.get(column, set())
        assert any(imp.error.startswith(f"p.csv, row {row + 2}, column {c}:") for c in named), imp.error
        assert list(CostLine.objects.order_by("id").values_list("id", "billed_cost")) == before
    else:
        assert imp.status == "done" and CostLine.objects.filter(cost_import=imp).count() == 5
    CostLine.objects.all().delete()
    CostImport.objects.all().delete()
