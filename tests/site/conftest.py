"""The search benchmarks moved here with their code (portal/site): they use search's fixtures. The
crawls of the demo organisation's pages (test_links.py, test_forms.py) share `demo_history`."""

import contextlib

import pytest

from tests.search.conftest import backend_vendor, indexed  # noqa: F401 (fixtures)


@pytest.fixture
def demo_history(demo_org, tmp_path):
    """The demo organisation as `make run` leaves it: its catalog with the docs the worker builds, a week of
    lineage, six weeks of usage history, incidents, the cost export, scorecards evaluated."""
    from catalog.models import Entity
    from portal.costs import demo as costs_demo
    from portal.incidents import demo as incidents_demo
    from portal.insights import demo as insights_demo
    from portal.lineage import demo as lineage_demo
    from portal.lineage import services as lineage_services
    from portal.lineage import spec as lineage_spec
    from portal.scorecards import services as scorecard_services
    from portal.techdocs import services as techdocs_services

    for entity in Entity.objects.all():  # what the Celery worker builds after `make run`'s registration
        techdocs_services.entity_docs_build(entity=entity)
    lineage_services.link_declared()  # what the catalog's commit hook does (this transaction never commits)
    with contextlib.suppress(lineage_spec.SpecMissing):  # as `demo lineage`: without the spec, no lineage
        lineage_demo.load()
    insights_demo.load()
    incidents_demo.load()
    costs_demo.load(folder=tmp_path)
    scorecard_services.evaluate_entities()
    scorecard_services.rollup_today()
    return demo_org
