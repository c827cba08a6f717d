"""The graph walk on PostgreSQL (run by `make test`'s production-profile pass): its recursive CTE is the
PostgreSQL spelling (one recursive term reading both edge tables through a LATERAL union), so the
behaviour tests run again there."""

import pytest

from tests.lineage import test_graph as g
from tests.lineage import test_graph_columns as columns
from tests.lineage import test_review_s33 as review
from tests.lineage.test_graph import org, private_middle  # noqa: F401 (fixtures)
from tests.lineage.test_review_s33 import private_writer  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_chain_depth_and_direction_on_postgresql(api):
    g.test_depth_and_direction(api)


def test_cycles_end_on_postgresql(api):
    g.test_cycles_end(api)


def test_private_nodes_on_postgresql(api, private_middle):  # noqa: F811
    g.test_private_nodes_of_other_teams_are_dropped_counted_and_never_named(api, private_middle)
    g.test_an_invisible_root_answers_exactly_like_a_missing_one(api, private_middle)


def test_catalog_relations_and_impact_on_postgresql(org):  # noqa: F811
    g.test_catalog_relations_are_oriented_upstream_to_downstream(org)
    g.test_impact_groups_by_kind_and_team_with_production_models_first(org)
    g.test_the_mixed_graph_takes_a_bounded_number_of_queries(org)


def test_constant_queries_on_postgresql(api):
    g.test_a_constant_number_of_queries_whatever_the_size(api)


def test_column_lineage_on_postgresql(api):
    columns.test_one_column_upstream_and_downstream_with_transformations(api)


def test_every_column_in_one_walk_on_postgresql(api):
    review.test_every_column_of_a_dataset_takes_the_queries_of_one(api)


def test_the_column_walk_cap_on_postgresql(api, monkeypatch):
    review.test_the_column_walk_is_cut_at_the_row_cap_and_says_so(api, monkeypatch)


def test_hidden_columns_on_postgresql(api, tmp_path, django_capture_on_commit_callbacks):
    review.test_hidden_columns_count_only_those_next_to_what_is_shown(api, tmp_path, django_capture_on_commit_callbacks)


def test_a_datasets_last_run_from_visible_writers_on_postgresql(api, member, private_writer):  # noqa: F811
    """The last-run subquery reads the writer's catalog_entity inside the node query's own."""
    review.test_a_datasets_last_run_comes_only_from_writers_the_reader_may_see(api, member, private_writer)
    review.test_a_dataset_page_leaves_out_the_runs_of_a_private_job_of_another_team(member, private_writer)
