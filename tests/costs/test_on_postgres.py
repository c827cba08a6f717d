"""The import on PostgreSQL (run by `make test`'s production-profile pass): COPY in batches, exact
NUMERIC sums, the replace-per-period transaction, a failure leaving nothing behind, Parquet, and the
allocation and its visibility."""

import pytest

from tests.costs import test_import as imports

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_allocation_on_postgresql(costed):
    imports.test_lines_are_allocated_by_tag_resource_mapping_team_and_shared_rule(costed)
    imports.test_private_entities_of_other_teams_are_left_out_and_counted(costed)


def test_reimport_replaces_on_postgresql(costed, tmp_path):
    imports.test_a_reimport_of_the_same_period_replaces_and_never_doubles(costed, tmp_path)


def test_a_bad_row_imports_nothing_on_postgresql(costed, tmp_path):
    imports.test_a_bad_row_imports_nothing_and_names_file_row_and_column(costed, tmp_path)


def test_a_nul_character_is_named_on_postgresql(costed, tmp_path):
    imports.test_a_nul_character_is_named_and_imports_nothing(costed, tmp_path)


def test_the_shared_split_hides_private_costs_on_postgresql(costed):
    from tests.costs import test_pages_api

    test_pages_api.test_the_shared_split_reveals_nothing_of_another_teams_private_costs(costed)


def test_time_zones_and_parquet_on_postgresql(demo_org, tmp_path):
    imports.test_odd_time_zones_are_normalised_to_utc_and_months_follow_utc(demo_org, tmp_path)


def test_parquet_on_postgresql(demo_org, tmp_path):
    imports.test_parquet_reads_like_csv(demo_org, tmp_path)


def test_copy_in_several_batches_on_postgresql(demo_org, tmp_path, settings):
    from decimal import Decimal

    from portal.costs import services
    from portal.costs.models import CostLine

    settings.PLINTH_COSTS_BATCH_ROWS = 7
    rows = [imports.line("0.0000001234", tags={"team": "recsys"}) for _ in range(50)]
    imp = services.import_now(path=imports.write_csv(tmp_path / "many.csv", rows), provider="aws")
    assert imp.status == "done" and imp.rows == 50
    total = sum(CostLine.objects.values_list("billed_cost", flat=True))
    assert total == Decimal("0.0000061700")  # exact: NUMERIC, not a float



def test_the_demo_costs_load_and_purge_on_postgresql(demo_org, tmp_path):
    from tests.costs import test_demo

    (tmp_path / "a").mkdir()
    test_demo.test_the_demo_export_is_imported_once_and_allocated_to_the_demo_organisation(demo_org, tmp_path / "a")
    test_demo.test_purge_removes_exactly_the_demo_costs(demo_org, tmp_path)  # loads again: nothing doubles
