"""The scorecard writes on PostgreSQL (run by `make test`'s production-profile pass): the many-row
inserts and updates of results (jsonb checks, level_since kept or started anew), level history, and the API."""

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


def test_batches_larger_than_one_statement_land_whole_on_postgresql():
    """More than VALUES_ROWS (500) new results, level changes and updated results in one batch: every
    row written once with its own values. An update whose level moved starts its level_since anew;
    one whose level stayed keeps it (the two go as separate UPDATE … FROM VALUES statements)."""
    from datetime import timedelta

    from django.utils import timezone

    from catalog.models import Entity
    from portal.core.db import VALUES_ROWS
    from portal.scorecards import bench, services
    from portal.scorecards.models import LevelChange, Result

    ids = bench.generate(2000)  # one batch (scorecards BATCH)
    t0 = timezone.now().replace(microsecond=0)
    cold = services.evaluate_entities(now=t0)
    before = {(r.entity_id, r.scorecard): r for r in Result.objects.all()}
    assert cold["written"] == len(before) > 2 * VALUES_ROWS
    assert LevelChange.objects.filter(at=t0).count() == len(before)  # one "" → level row per new result
    assert all(r.level_since == t0 == r.evaluated_at for r in before.values())

    flipped, orphaned = ids[:700], ids[700:]
    Entity.objects.filter(pk__in=flipped, visibility="internal").update(visibility="private")
    Entity.objects.filter(pk__in=orphaned).update(owner_team=None)
    t1 = t0 + timedelta(hours=1)
    warm = services.evaluate_entities(now=t1)
    after = {(r.entity_id, r.scorecard): r for r in Result.objects.all()}
    assert set(after) == set(before)
    moved = [k for k in after if after[k].level != before[k].level]
    kept = [k for k in after if after[k].level == before[k].level and after[k].digest != before[k].digest]
    assert len(moved) > VALUES_ROWS and len(kept) > VALUES_ROWS, (len(moved), len(kept))
    assert warm["written"] == len(moved) + len(kept)
    assert all(after[k].level_since == t1 for k in moved)
    assert all(after[k].level_since == t0 for k in after if k not in moved)
    assert all(after[k].evaluated_at == t1 for k in after)
    visibility = dict(Entity.objects.filter(pk__in=ids).values_list("pk", "visibility"))
    owner = dict(Entity.objects.filter(pk__in=ids).values_list("pk", "owner_team_id"))
    assert all(r.visibility == visibility[e] and r.owner_team_id == owner[e] for (e, _), r in after.items())
    changes = {(c.entity_id, c.scorecard): (c.from_level, c.to_level) for c in LevelChange.objects.filter(at=t1)}
    assert changes == {k: (before[k].level, after[k].level) for k in moved}


def test_drilldown_on_postgresql(demo_org, card_dir):
    """The lists behind the counts (the domain filter's systems go as one text array) hold exactly
    what each count counts, for a platform admin and for a reader of another team."""
    from portal.scorecards import services
    from tests.scorecards import test_drilldown as drilldown

    drilldown.write(card_dir, "every-kind.yaml", drilldown.EVERY_KIND)
    services.evaluate_entities()
    for username in ("carol", "grace"):
        for card in ("every-kind", "production-readiness"):
            drilldown.check_every_link(demo_org["users"][username], card)
    drilldown.test_another_teams_private_entity_is_neither_counted_nor_listed(demo_org)
