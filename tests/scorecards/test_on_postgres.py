"""The scorecard writes on PostgreSQL (run by `make test`'s production-profile pass): the executemany
inserts and updates of results (jsonb checks, the level_since CASE), level history, and the API."""

import pytest

from tests.scorecards import test_api_pages as pages
from tests.scorecards import test_evaluation as evaluation

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_evaluation_and_history_on_postgresql(demo_org):
    evaluation.test_the_demo_catalog_is_evaluated_and_explained(demo_org)
    evaluation.test_a_level_change_is_recorded_in_the_history(demo_org)


def test_a_second_pass_writes_nothing_on_postgresql(demo_org):
    evaluation.test_a_second_pass_writes_nothing_and_records_no_change(demo_org)


def test_manual_expiry_on_postgresql(demo_org):
    evaluation.test_an_expired_manual_answer_fails(demo_org)


def test_api_visibility_on_postgresql(demo_org):
    from portal.scorecards import services

    services.evaluate_entities()
    pages.test_results_of_another_teams_private_entity_never_appear(demo_org)
    pages.test_results_are_cursor_paged_and_filtered(demo_org)
