"""No Celery message outlives the test that sent it (portal/settings/test.py, tests/conftest.py).

Before, the test process published to the suite's Redis even when no worker ran: the next test's worker
started with a queue of earlier tests' tasks (14–27 of them in a governance run) and ran them against its
own data. Run by hand without `tests.services`, the tests published to var/'s embedded broker, which a
developer's `make run` worker then consumed (a docs build per hostile form post, against the dev data)."""

from __future__ import annotations

import redis

from portal.celery import app
from tests.conftest import _broker_url, reset_broker

TASK = "portal.techdocs.tasks.build_entity_docs"


def _queued(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return client.llen("celery") + client.hlen("unacked")
    finally:
        client.close()


def test_a_test_without_a_worker_publishes_into_its_own_memory(request, settings):
    # Not a parameter: a test that names the suite's Redis publishes there (it may start a worker).
    redis_url = request.getfixturevalue("redis_url")
    assert settings.CELERY_BROKER_URL == "memory://"
    assert app.conf.broker_url == "memory://"
    before = _queued(redis_url)
    app.send_task(TASK, args=(["component:default/nowhere"],))
    assert _queued(redis_url) == before  # not in the Redis a later test's worker consumes


def test_a_test_that_names_the_suites_redis_publishes_there_from_its_set_up(redis_url):
    """Its set-up may queue work before its worker starts (a request submitted, a run created)."""
    assert app.conf.broker_url == redis_url


def test_what_a_worker_test_leaves_queued_is_dropped_and_memory_comes_back(redis_url):
    assert _broker_url(redis_url) == redis_url  # as start_celery_worker does
    app.send_task(TASK, args=(["component:default/nowhere"],))
    assert _queued(redis_url) >= 1
    reset_broker()  # what the autouse fixture runs after every test
    assert _queued(redis_url) == 0
    assert app.conf.broker_url == "memory://"
    app.send_task(TASK, args=(["component:default/nowhere"],))
    assert _queued(redis_url) == 0
