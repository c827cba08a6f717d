"""Two catalog writes at once on PostgreSQL: the second waits for the first at the catalog's write lock
(catalog.facets.lock), so its delta follows exactly the version the first committed. Before, a writer
that found another write committed since its first change counted the whole cube in its request (at
250k, 2.4-5 s: two uploads of the load test took 5.1 and 5.4 s)."""

import threading
import time

import pytest
from django.db import connection, connections

from catalog import facets, services
from tests.catalog.test_facets import assert_a_new_process_counts_what_a_live_count_gives

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only"),
              pytest.mark.django_db(transaction=True)]


def _dataset(name: str, owner: str, tag: str) -> dict[str, str]:
    return {"catalog-info.yaml": f"apiVersion: plinth.dev/v1alpha1\nkind: Dataset\n"
                                 f"metadata: {{name: {name}, tags: [{tag}]}}\n"
                                 f"spec: {{owner: {owner}, classification: internal}}\n"}


def test_concurrent_writes_each_keep_an_exact_delta(demo_org, write_tree, monkeypatch):
    from django.core.cache import cache
    from django.test.utils import CaptureQueriesContext

    user = demo_org["users"]["alice"]
    facets.warm()  # the current version's cube is cached: both writes only keep deltas
    counted = []
    original_counted, original_lock = facets._counted, facets.lock
    monkeypatch.setattr(facets, "_counted", lambda: counted.append(threading.current_thread().name)
                        or original_counted())
    first_locked, second_trying = threading.Event(), threading.Event()

    def lock():
        name = threading.current_thread().name
        if name == "second":
            second_trying.set()
        found = original_lock()
        if name == "first" and not first_locked.is_set():
            first_locked.set()  # hold the lock until the second writer waits for it
            assert second_trying.wait(10)
            time.sleep(0.5)
        return found

    monkeypatch.setattr(facets, "lock", lock)
    # The version each write made, recorded as it bumps (read after the write returns, the first's could
    # already be the second's: the second commits as soon as the first lets go of the lock).
    made: dict[str, int] = {}
    original_bump = facets.bump

    def bump():
        previous, current = original_bump()
        made[threading.current_thread().name] = current
        return previous, current

    monkeypatch.setattr(facets, "bump", bump)
    trees = {"first": write_tree(_dataset("first-one", "fraud-ml", "pii"), "a"),
             "second": write_tree(_dataset("second-one", "recsys", "gold"), "b")}
    versions, errors = {}, []

    def register(name: str) -> None:
        try:
            services.location_register(target=str(trees[name]), actor=None, file_roots=None)
            versions[name] = made[name]
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=register, args=("first",), name="first")
    first.start()
    assert first_locked.wait(20)
    second = threading.Thread(target=register, args=("second",), name="second")
    second.start()
    first.join(30)
    second.join(30)
    assert not errors, errors
    assert counted == [], "neither write counted the cube"
    assert cache.get(facets._delta_key(versions["second"]))[0] == versions["first"], \
        "the second write's delta follows the first's version"
    assert facets.version() == versions["second"]
    with CaptureQueriesContext(connection) as ctx:
        facets.warm()
    assert not any("GROUP BY" in q["sql"] for q in ctx.captured_queries), "rolled forward, not counted"
    assert_a_new_process_counts_what_a_live_count_gives(user)
