"""API rate limits: counted per token (per user for sessions, per address for anonymous calls) in
the real Redis, 429 with Retry-After and the API's error body, a stricter scope for expensive
writes. The suite's defaults are generous; each test sets small limits of its own."""

import uuid
import zlib

import pytest
import redis
from django.test import Client

from portal.accounts import services
from portal.core import throttling
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
VALID = {"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "svc"},
                    "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}}}


@pytest.fixture
def rates(settings, redis_url):
    """Counters in the suite's Redis under a prefix of this test's own."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {**settings.CACHES, "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}}
    settings.PLINTH_API_RATES = {"read": "3/min", "write": "100/min", "expensive": "2/min", "anon": "2/min"}
    return settings, prefix


def token_client(user=None, name="t") -> Client:
    _, raw = services.token_create(user=user or UserFactory(), name=name)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_each_token_is_limited_on_its_own_with_429_and_retry_after(rates):
    user = UserFactory()
    first, second = token_client(user, "one"), token_client(user, "two")
    assert [first.get("/api/v1/me").status_code for _ in range(3)] == [200] * 3
    refused = first.get("/api/v1/me")
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    # The rest of this window, then a third of the next one (3 requests weighted down until a 4th fits).
    assert 20 <= wait <= 80
    assert refused.json() == {"error": {
        "status": 429, "scope": "read", "limit": 3, "periodSeconds": 60, "retryAfter": wait,
        "message": f"Rate limit exceeded: at most 3 read requests per minute for this token. "
                   f"Retry after {wait} second{'' if wait == 1 else 's'}."}}
    # The same user's other token has its own budget.
    assert [second.get("/api/v1/me").status_code for _ in range(3)] == [200] * 3
    assert second.get("/api/v1/me").status_code == 429


def test_counters_live_in_redis_and_expire(rates, redis_url):
    _, prefix = rates
    token_client().get("/api/v1/me")
    keys = redis.Redis.from_url(redis_url).keys(f"{prefix}:*")
    assert len(keys) == 1 and b":read:token:" in keys[0]
    # Three periods: its own window, the next one (which weighs it), and slack for clock skew.
    assert 0 < redis.Redis.from_url(redis_url).ttl(keys[0]) <= 180, "a window's counter never outlives it long"


def test_expensive_writes_have_a_stricter_scope_than_reads_and_writes(rates):
    api = token_client()
    codes = [api.post("/api/v1/validate-entity", VALID, content_type="application/json").status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = api.post("/api/v1/validate-entity", VALID, content_type="application/json")
    assert refused.json()["error"]["scope"] == "expensive"
    # Cheap writes and reads are not affected by the expensive budget.
    assert api.get("/api/v1/me").status_code == 200
    assert api.post("/api/v1/approval-requests/999999/comments", {"body": "x"},
                    content_type="application/json").status_code == 404


def test_session_calls_are_limited_per_user(rates, client):
    user = UserFactory()
    client.force_login(user)
    assert [client.get("/api/v1/me").status_code for _ in range(4)] == [200, 200, 200, 429]
    other = Client()
    other.force_login(user)
    assert other.get("/api/v1/me").status_code == 429, "a second session of the same user shares the budget"
    assert token_client(user).get("/api/v1/me").status_code == 200


def test_anonymous_calls_are_limited_per_address(rates):
    anon = Client(REMOTE_ADDR="203.0.113.9")
    codes = [anon.get("/api/v1/me").status_code for _ in range(2)]
    bad_token = anon.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer plinth_abcdefgh_" + "x" * 40)
    assert codes == [401, 401] and bad_token.status_code == 429
    assert bad_token.json()["error"]["scope"] == "anon" and "Retry-After" in bad_token
    assert Client(REMOTE_ADDR="198.51.100.7").get("/api/v1/me").status_code == 401


def test_a_refused_write_changes_nothing(rates, tmp_path, settings):
    from catalog.models import Location

    rates[0].PLINTH_API_RATES = {**rates[0].PLINTH_API_RATES, "expensive": "1/min"}
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    user = UserFactory(is_superuser=True)
    api = token_client(user)
    for i in range(2):
        (tmp_path / f"c{i}.yaml").write_text(
            f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: c{i}}}\n"
            "spec: {type: service, lifecycle: production, owner: team-a}\n")
    assert api.post("/api/v1/locations", {"target": str(tmp_path / "c0.yaml")},
                    content_type="application/json").status_code == 201
    refused = api.post("/api/v1/locations", {"target": str(tmp_path / "c1.yaml")}, content_type="application/json")
    assert refused.status_code == 429
    assert list(Location.objects.values_list("target", flat=True)) == [str(tmp_path / "c0.yaml")]


def test_a_window_boundary_does_not_double_the_budget(rates, monkeypatch):
    """Fixed windows let a client spend its budget in a window's last second and again in the next
    one's first: twice the limit within two seconds. The sliding estimate weighs a full window on the
    next one, which hands its budget out gradually: never more than the limit + 1 in any 10 seconds,
    the limit a minute over minutes. (Any 60 seconds can still hold nearly twice the limit when a burst
    ends one window: the estimate takes requests as spread evenly. Fixed windows allow exactly twice.)"""
    settings, _ = rates
    settings.PLINTH_API_RATES = {**settings.PLINTH_API_RATES, "read": "10/min"}
    key = f"token:boundary-{uuid.uuid4().hex[:6]}"
    start = 1_800_000_000 // 60 * 60 + zlib.crc32(key.encode()) % 60  # a window of this key starts here
    now = [start + 59.0]
    monkeypatch.setattr(throttling, "clock", lambda: now[0])
    assert [throttling.hit("read", key, "token") for _ in range(10)] == [None] * 10
    assert throttling.hit("read", key, "token") is not None
    now[0] = start + 61.0  # a fixed window would give 10 more here
    refusal = throttling.hit("read", key, "token")
    assert refusal is not None and refusal.wait == 5, refusal  # 10 x (1 - 6/60) + 1 fits at 6 s in
    assert [throttling.hit("read", key, "token") for _ in range(3)] != [None] * 3  # hammering: refused
    now[0] += refusal.wait
    assert throttling.hit("read", key, "token") is None, "Retry-After was honest"
    # A greedy client, as many requests as are allowed every second for three minutes.
    allowed = [start + 59.0] * 10 + [now[0]]
    while now[0] < start + 240:
        now[0] += 1
        while throttling.hit("read", key, "token") is None:
            allowed.append(now[0])
    for t in allowed:
        assert sum(1 for u in allowed if t <= u < t + 10) <= 11, t
        assert sum(1 for u in allowed if t <= u < t + 60) <= 19, t
    three_minutes = sum(1 for u in allowed if start + 60 <= u < start + 240)
    assert 27 <= three_minutes <= 31, three_minutes  # about its budget a minute, no more
