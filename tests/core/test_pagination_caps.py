"""Every API list: a page size outside its range is a 400 naming the maximum, a garbage or forged
cursor is a 400 (never a 500), and following `nextCursor` visits every row exactly once."""

import base64
import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from catalog.models import Location
from portal.governance.models import ApprovalRequest
from portal.techdocs.models import DocSite
from tests.factories import EntityFactory, UserFactory

pytestmark = pytest.mark.django_db
LISTS = {  # path: maximum page size
    "/api/v1/entities": 500,
    "/api/v1/locations": 500,
    "/api/v1/approval-requests": 500,
    "/api/v1/audit-events": 500,
    "/api/v1/scaffolder/templates": 200,
    "/api/v1/techdocs/sites": 500,
    "/api/v1/search": 100,
}


def cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.fixture
def admin():
    client = Client()
    client.force_login(UserFactory(username="root", is_superuser=True))
    return client


@pytest.mark.parametrize("path,maximum", LISTS.items())
@pytest.mark.parametrize("limit", ["0", "-1", "MAX+1", "abc", "1e3"])
def test_page_size_outside_the_range_is_400_naming_the_maximum(admin, path, maximum, limit):
    limit = str(maximum + 1) if limit == "MAX+1" else limit
    response = admin.get(path, {"limit": limit})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["message"].startswith("limit: ") and str(maximum) in error["message"]
    assert admin.get(path, {"limit": str(maximum)}).status_code == 200


GARBAGE = ["%%%", "bm90IGpzb24", cursor([1, 2]), cursor({}), cursor({"id": "1 OR 1=1"}),
           cursor({"o": "metadata.name", "k": "x", "id": "abc"}), cursor({"o": "metadata.name", "k": {"a": 1}, "id": 1}),
           cursor({"o": "-updated", "k": "x", "id": 1}), cursor({"t": "yesterday", "id": 1}),
           cursor({"f": True, "k": "x", "id": 1}), cursor({"id": 1, "extra": 2}), "A" * 5000]


@pytest.mark.parametrize("path", [p for p in LISTS if p != "/api/v1/audit-events"])
@pytest.mark.parametrize("raw", GARBAGE)
def test_a_garbage_cursor_is_400(admin, path, raw):
    response = admin.get(path, {"cursor": raw})
    assert response.status_code == 400, (path, raw, response.content[:300])
    assert response.json()["error"]["message"] == "cursor: Malformed or stale cursor; start again without one."


@pytest.mark.parametrize("query,field", [("after=abc", "after"), ("since=yesterday", "since"),
                                         ("until=2026-02-30", "until")])
def test_audit_event_filters_are_validated(admin, query, field):
    response = admin.get(f"/api/v1/audit-events?{query}")
    assert response.status_code == 400 and field in response.json()["error"]["details"]


def walk(client, path: str, key) -> list:
    seen, url = [], f"{path}?limit=2"
    for _ in range(20):
        body = client.get(url).json()
        seen += [key(item) for item in body["items"]]
        nxt = body["pageInfo"]["nextCursor"]
        if nxt is None:
            return seen
        url = f"{path}?limit=2&cursor={nxt}"
    raise AssertionError("pagination did not end")


def test_locations_page_through_every_row_once(admin):
    targets = [f"/srv/repo-{i}/catalog-info.yaml" for i in range(5)]
    for target in targets:
        Location.objects.create(type="file", target=target)
    assert walk(admin, "/api/v1/locations", lambda item: item["target"]) == targets


def test_approval_requests_page_through_ties_on_created_at(admin):
    requester = UserFactory()
    rows = [ApprovalRequest.objects.create(action="deprecate", target_ref=f"model:default/m{i}", requester=requester,
                                           workflow_name="w") for i in range(5)]
    same = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    ApprovalRequest.objects.filter(pk__in=[r.pk for r in rows[1:4]]).update(created_at=same)
    seen = walk(admin, "/api/v1/approval-requests", lambda item: item["id"])
    assert sorted(seen) == sorted(r.pk for r in rows) and len(seen) == 5


def test_docs_sites_page_through_every_site_once(admin):
    entities = [EntityFactory(name=f"svc-{i}") for i in range(5)]
    for entity in entities:
        DocSite.objects.create(entity=entity)
    assert walk(admin, "/api/v1/techdocs/sites", lambda item: item["entityRef"]) == [e.ref for e in entities]


def test_templates_page_through_every_template_once(demo_org):
    client = Client()
    client.force_login(demo_org["users"]["alice"])
    everything = [t["ref"] for t in client.get("/api/v1/scaffolder/templates").json()["items"]]
    assert len(everything) >= 3
    assert walk(client, "/api/v1/scaffolder/templates", lambda item: item["ref"]) == everything
