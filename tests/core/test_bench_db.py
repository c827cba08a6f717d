"""`--database postgres` of the benchmark commands: the command line passed on, and refusals."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.core import bench_db


def test_the_database_option_is_left_out_of_the_command_line_passed_on():
    assert bench_db.without_database_option(
        ["catalog", "bench", "--database", "postgres", "--entities", "250000"]) == [
        "catalog", "bench", "--entities", "250000"]
    assert bench_db.without_database_option(["lineage", "bench", "--database=postgres", "--clients", "2"]) == [
        "lineage", "bench", "--clients", "2"]


@pytest.mark.django_db
def test_from_call_command_postgres_is_refused_with_a_message_and_nothing_runs():
    """The run on PostgreSQL re-parses the command line: only `manage.py …` has one."""
    with pytest.raises(CommandError, match="from the command line"):
        call_command("lineage", "bench", "--database", "postgres", "--events", "10", "--nodes", "5")


@pytest.mark.django_db
@pytest.mark.prod_smoke
def test_asking_for_sqlite_on_postgresql_is_refused():
    with pytest.raises(CommandError, match="configured database is postgresql"):
        call_command("search", "bench", "--database", "sqlite", "--entities", "10")
