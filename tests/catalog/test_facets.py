"""The facet cube gives exactly the counts a live COUNT/GROUP BY gives, for every user and filter."""

import pytest
from django.http import QueryDict

from catalog import facets, selectors
from catalog.filters import EntityFilter
from tests.factories import EntityFactory

pytestmark = pytest.mark.django_db

FILTERS = ["", "kind=model", "kind=model,dataset", "lifecycle=production", "owner=fraud-ml",
           "owner=group:default/recsys&kind=featureset", "type=classifier&lifecycle=experimental",
           "namespace=default&kind=api", "kind=nothing", "tag=fraud", "tag=pii&kind=dataset,model",
           "tag=nothing&lifecycle=production"]
NAMES = ["kind", "type", "lifecycle", "owner", "namespace", "tag"]


def assert_a_new_process_counts_what_a_live_count_gives(user) -> None:
    facets._LOCAL.update(version=None, cube=None)  # a process that has arranged nothing yet
    total, cube = facets.counts(user, {}, NAMES)
    live = selectors.facets(selectors.entity_list(user), NAMES)
    assert total == selectors.entity_list(user).count()
    for name in NAMES:
        assert sorted((f["value"], f["count"]) for f in cube[name]) == \
            sorted((f["value"], f["count"]) for f in live[name]), name


class _Request:
    def __init__(self, user):
        self.user = user


@pytest.mark.parametrize("username", ["alice", "carol", "heidi", "grace"])
@pytest.mark.parametrize("query", FILTERS)
def test_cube_counts_equal_live_counts(demo_org, username, query):
    user = demo_org["users"][username]
    params = QueryDict(query)
    live_qs = EntityFilter(params, queryset=selectors.entity_list(user), request=_Request(user)).qs
    assert facets.simple_filters(params) is not None
    total, cube, _, _ = selectors.list_counts(user, params, live_qs, NAMES)
    assert total == live_qs.count()
    live = selectors.facets(live_qs, NAMES)
    for name in NAMES:
        assert sorted((f["value"], f["count"]) for f in cube[name]) == \
            sorted((f["value"], f["count"]) for f in live[name]), name


def test_cube_follows_catalog_writes(demo_org):
    user = demo_org["users"]["alice"]
    before, _ = facets.counts(user, {}, [])
    EntityFactory(name="late-arrival")  # written outside the services: no bump, cached counts stay
    assert facets.counts(user, {}, [])[0] == before
    facets.bump()
    assert facets.counts(user, {}, [])[0] == before + 1


def test_other_filters_are_counted_live(demo_org):
    assert facets.simple_filters(QueryDict("q=fraud")) is None
    assert facets.simple_filters(QueryDict("tag=pii,gpu")) is None, "several tags: all must be present"
    assert facets.simple_filters(QueryDict("tag=pii&tag=gpu")) is None
    assert facets.simple_filters(QueryDict("tag=PII&kind=model")) == {facets.TAG: {"pii"}, 0: {"model"}}
    assert facets.simple_filters(QueryDict("kind=model&page=2&order=-name")) == {0: {"model"}}


@pytest.mark.parametrize("strategy", ["keep", "delete"])
def test_writes_roll_the_cached_cube_forward_exactly(demo_org, tmp_path, settings, strategy,
                                                     django_capture_on_commit_callbacks):
    """After register, change, orphaning and unregister, the cube is already cached for the new
    version (no recount) and still equals a live count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog import services
    from catalog.models import Location

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = strategy
    user = demo_org["users"]["alice"]
    facets.counts(user, {}, NAMES)  # warm the cube of the current version
    path = tmp_path / "catalog-info.yaml"

    def check():
        with CaptureQueriesContext(connection) as ctx:
            total, cube = facets.counts(user, {}, NAMES)
        assert not any("GROUP BY" in q["sql"] for q in ctx.captured_queries), "recounted instead of rolled"
        live = selectors.facets(selectors.entity_list(user), NAMES)
        assert total == selectors.entity_list(user).count()
        for name in NAMES:
            assert sorted(map(tuple, (f.values() for f in cube[name]))) == \
                sorted(map(tuple, (f.values() for f in live[name]))), name

    def write(docs):
        path.write_text("".join(
            f"---\napiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {{name: {n}, tags: [{t}]}}\n"
            f"spec: {{owner: {o}, classification: internal}}\n" for n, o, t in docs))

    write([("a", "fraud-ml", "pii"), ("b", "recsys", "gold"), ("c", "fraud-ml", "pii")])
    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(path), actor=None, file_roots=None)
    check()
    write([("a", "recsys", "silver")])  # a changes owner and tag; b and c disappear (orphaned or deleted)
    with django_capture_on_commit_callbacks(execute=True):
        services.location_refresh(location=Location.objects.get(pk=plan.location.pk))
    check()
    with django_capture_on_commit_callbacks(execute=True):
        services.location_unregister(location=Location.objects.get(pk=plan.location.pk), actor=None)
    check()


def test_a_write_keeps_its_delta_and_the_worker_rolls_the_cube_forward(demo_org, tmp_path, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    """A write counts nothing and stores no whole cube: it keeps its delta and queues the worker's
    roll-forward (once, however many writes), which derives the new version's cube from the last cached
    one without a GROUP BY. With nothing cached to roll from, the cube is counted; when a new team takes
    over other locations' entities, the delta is incomplete and the writer counts the new version. Every
    way, the cube equals a live count."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog import services
    from catalog.models import Entity
    from catalog.tasks import warm_facet_cube

    user = demo_org["users"]["alice"]
    counted = []
    original = facets._counted
    monkeypatch.setattr(facets, "_counted", lambda: counted.append(facets.version()) or original())

    def same_as_live():
        assert_a_new_process_counts_what_a_live_count_gives(user)

    def register(name: str, text: str) -> None:
        (tmp_path / name).write_text(text)
        with django_capture_on_commit_callbacks(execute=True):
            services.location_register(target=str(tmp_path / name), actor=None, file_roots=None)

    cache.clear()
    register("one.yaml", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\n"
                         "metadata: {name: orphaned-owner, tags: [pii]}\n"
                         "spec: {owner: newcomers, classification: internal}\n")
    assert counted == [] and not cache.has_key(facets._key(facets.version())), "the write counted nothing"
    assert cache.get(facets.WARM_QUEUED_KEY), "and queued the worker"
    same_as_live()  # no cube before the write to roll from: counted
    assert counted == [facets.version()]
    assert Entity.objects.get(ref="dataset:default/orphaned-owner").owner_team_id is None

    counted.clear()
    for n in range(3):
        register(f"more-{n}.yaml", f"apiVersion: plinth.dev/v1alpha1\nkind: Dataset\n"
                                   f"metadata: {{name: more-{n}, tags: [pii, gold]}}\n"
                                   f"spec: {{owner: recsys, classification: internal}}\n")
    assert not cache.has_key(facets._key(facets.version()))
    with CaptureQueriesContext(connection) as ctx:
        assert warm_facet_cube() > 0
    assert not any("GROUP BY" in q["sql"] for q in ctx.captured_queries), "rolled by three deltas, not counted"
    assert counted == [] and cache.get(facets.WARM_QUEUED_KEY) is None
    same_as_live()
    assert counted == []

    register("team.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: newcomers}\n"
                          "spec: {type: team, children: []}\n")
    assert Entity.objects.get(ref="dataset:default/orphaned-owner").owner_team_id is not None
    assert counted == [facets.version()], "another location's entity changed team: counted anew by the writer"
    same_as_live()


def test_live_counts_stop_at_the_cap_and_say_so(demo_org, client, monkeypatch):
    """Complex filters are counted live up to a cap; beyond it the page and the API say "at least"."""
    monkeypatch.setattr(selectors, "LIVE_COUNT_CAP", 2)
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/?q=c").content.decode()  # a name prefix: not in the cube
    assert "2+ entities" in html and "counting stops at 2" in html
    body = client.get("/api/v1/entities?q=c").json()
    assert body["totalItems"] == 2 and body["totalIsLowerBound"] is True
    assert len(body["items"]) > 2, "the rows themselves are not capped"
    monkeypatch.setattr(selectors, "LIVE_COUNT_CAP", 10_000)
    facets.bump()  # counts are remembered per catalog version: start a new one
    exact = client.get("/api/v1/entities?q=c").json()
    assert exact["totalItems"] == len(exact["items"]) and "totalIsLowerBound" not in exact


def test_facets_the_cube_cannot_give_count_a_sample_and_say_so(demo_org, client, monkeypatch):
    monkeypatch.setattr(selectors, "FACET_SAMPLE", 1)
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/?tag=fraud").content.decode()  # exact total from the cube
    assert "facet counts of the first 1" in html and "+ entit" not in html
    body = client.get("/api/v1/entity-facets?facet=metadata.tags&filter=metadata.tags=fraud").json()
    assert body["countedMatches"] == 1
    assert sum(f["count"] for f in body["facets"]["metadata.tags"] if f["value"] == "fraud") == 1
    monkeypatch.setattr(selectors, "FACET_SAMPLE", 2_000)
    facets.bump()
    exact = client.get("/api/v1/entity-facets?facet=metadata.tags&filter=metadata.tags=fraud").json()
    assert "countedMatches" not in exact
    assert [f["count"] for f in exact["facets"]["metadata.tags"] if f["value"] == "fraud"] == [
        client.get("/api/v1/entities?filter=metadata.tags=fraud").json()["totalItems"]]


@pytest.mark.parametrize("share", [0.0, 1.0])  # every tag "common" (EXISTS probe) / "rare" (IN the tag's rows)
def test_both_tag_filter_plans_select_the_same_entities(demo_org, monkeypatch, share):
    from catalog import filters

    user = demo_org["users"]["grace"]
    monkeypatch.setattr(filters, "COMMON_TAG_SHARE", share)
    for query in ["tag=fraud", "tag=pii&kind=dataset", "tag=fraud,streaming", "tag=nothing"]:
        found = EntityFilter(QueryDict(query), queryset=selectors.entity_list(user), request=_Request(user)).qs
        expected = {e.ref for e in selectors.entity_list(user)
                    if all(t in e.tags for t in QueryDict(query)["tag"].split(","))
                    and ("kind" not in query or e.kind_key == "dataset")}
        assert {e.ref for e in found} == expected, query


def test_the_worker_warms_the_cube_of_the_current_version(demo_org):
    from django.core.cache import cache

    from catalog.tasks import warm_facet_cube

    _, current = facets.bump()
    assert cache.get(facets._key(current)) is None
    assert warm_facet_cube() == len(cache.get(facets._key(current))[0]) > 0


def test_live_counts_are_remembered_per_version_scope_and_filters(demo_org, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count_queries(url, user):
        client.force_login(user)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return sum("COUNT(" in q["sql"] and "catalog_" in q["sql"] for q in ctx.captured_queries)

    alice, grace = demo_org["users"]["alice"], demo_org["users"]["grace"]
    assert count_queries("/catalog/?q=c", alice) >= 1
    assert count_queries("/catalog/?q=c&page=1", alice) == 0, "paging does not count again"
    selectors._LIVE.update(version=None, memo={})  # as another web process: it has remembered nothing
    assert count_queries("/catalog/?q=c", alice) == 0, "another process reads the counts from the shared cache"
    assert count_queries("/catalog/?q=c", grace) >= 1, "another permission scope counts for itself"
    assert count_queries("/catalog/?q=ca", alice) >= 1, "other filters count for themselves"
    assert count_queries("/catalog/?q=c&starred=true", alice) >= 1
    assert count_queries("/catalog/?q=c&starred=true", alice) >= 1, "a user's stars are never remembered"
    facets.bump()  # any catalog write
    assert count_queries("/catalog/?q=c", alice) >= 1
    selectors._LIVE.update(version=None, memo={})
    assert count_queries("/catalog/?q=c", grace) >= 1, "shared per permission scope: grace's are her own"


def test_an_unversioned_catalog_is_counted_afresh_never_from_a_cached_cube(db):
    """Entities that no service wrote (fixtures, a test's flush, a restore without the state row) leave
    the version unset: its counts come from the rows each time. A cube cached for the unversioned
    catalog once outlived a flushed test and added two entities to the next test's totals."""
    from catalog.models import Entity
    from tests.factories import UserFactory

    admin = UserFactory(is_superuser=True)
    assert facets.version() == facets.UNVERSIONED
    EntityFactory.create_batch(2)
    assert facets.counts(admin, {}, [])[0] == 2
    Entity.objects.all().delete()  # as a test flush does: no version bump
    EntityFactory.create_batch(3)
    assert facets.counts(admin, {}, [])[0] == 3
    total, _, _, _ = selectors.list_counts(admin, QueryDict(""), selectors.entity_list(admin), [])
    assert total == 3


def test_bump_returns_the_version_it_follows(db):
    first_before, first = facets.bump()
    assert first_before == facets.UNVERSIONED and facets.version() == first
    before, second = facets.bump()
    assert before == first and second != first and facets.version() == second


def test_web_processes_catch_up_by_each_writes_delta(demo_org, tmp_path, django_capture_on_commit_callbacks):
    """A process holding the previous version arranged applies the write's delta in place (at 250k a
    re-arrangement costs ~0.4 s per process and write; docs/deployment.md#load-test) and counts what a
    freshly arranged cube and a live count give, for a member, an outsider and an admin; a missing delta
    falls back to arranging afresh."""
    from django.core.cache import cache

    from catalog import services
    from catalog.models import Location

    users = [demo_org["users"][name] for name in ("alice", "heidi", "grace")]
    queries = [{}, {0: {"dataset"}}, {0: {"model"}}, {facets.TAG: {"pii"}}, {3: {"group:default/recsys"}},
               {0: {"dataset"}, facets.TAG: {"fresh"}}]
    facets.counts(users[0], {}, NAMES)  # this process arranges the current version
    arranged = facets._LOCAL["cube"]

    def same_as_fresh():
        fresh = facets.Cube(*facets._cube(facets.version()))
        for user in users:
            teams = None if user.is_superuser else set(facets.permissions.team_ids(user))
            for query in queries:
                total, per_facet = fresh.counts(teams, query, NAMES)
                expected = {name: facets.top_values(counter) for name, counter in per_facet.items()
                            if counter is not None}
                assert facets.counts(user, query, NAMES) == (total, expected), (user, query)
        total, cube = facets.counts(users[0], {}, NAMES)
        live = selectors.facets(selectors.entity_list(users[0]), NAMES)
        assert total == selectors.entity_list(users[0]).count()
        for name in NAMES:
            assert sorted((f["value"], f["count"]) for f in cube[name]) == \
                sorted((f["value"], f["count"]) for f in live[name]), name

    same_as_fresh()  # and remembers each filter set's sums, which the deltas below must carry forward
    assert facets._LOCAL["cube"] is arranged and arranged.entities._memo and arranged.tags._memo
    path = tmp_path / "catalog-info.yaml"
    path.write_text(
        "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: new-one, tags: [pii, fresh]}\n"
        "spec: {owner: recsys, classification: internal}\n---\n"
        "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: secret-one\n  tags: [pii]\n"
        "  annotations: {plinth.dev/visibility: private}\nspec: {owner: recsys, classification: pii}\n")
    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(path), actor=None, file_roots=None)
    same_as_fresh()
    assert facets._LOCAL["cube"] is arranged, "caught up by the delta, not arranged afresh"

    with django_capture_on_commit_callbacks(execute=True):
        services.location_unregister(location=Location.objects.get(pk=plan.location.pk), actor=None)
    same_as_fresh()
    assert facets._LOCAL["cube"] is arranged
    assert not [f for f in facets.counts(users[0], {}, ["tag"])[1]["tag"] if f["value"] == "fresh"], \
        "an emptied combo is not offered as a facet value"

    with django_capture_on_commit_callbacks(execute=True):
        plan = services.location_register(target=str(path), actor=None, file_roots=None)
    cache.delete(facets._delta_key(facets.version()))
    same_as_fresh()
    assert facets._LOCAL["cube"] is not arranged, "no delta: arranged afresh"
