"""Property-based bad input for descriptors, through the real HTTP surfaces: `POST /api/v1/validate-entity`,
location registration by the API (dry run and real) from files this test writes, and the HTML register page
with CSRF enforced. Every example: a 2xx, or a 4xx naming what is wrong and where; a refused write changes
nothing; never a 5xx (tests/hostile.py, docs/security.md)."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from catalog.models import Entity, EntityTag, Location, LocationSource, ProcessingError, Relation
from portal.accounts import services as account_services
from portal.accounts.models import Membership, Role, Team
from portal.core.models import AuditEvent
from portal.search.models import SearchDocument
from tests import hostile
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.hostile import each_backend  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("each_backend")]

OWNER = "bad-input-team"
WRITTEN = (Entity, Relation, EntityTag, Location, LocationSource, ProcessingError, AuditEvent, SearchDocument, Team,
           Membership)
_files = itertools.count()


@pytest.fixture
def member(settings, tmp_path):
    """A user with the member role in the team every generated descriptor names as owner (the
    registration's ownership rule), reading files only below tmp_path."""
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    user = UserFactory(username="bad-input-member")
    MembershipFactory(user=user, team=TeamFactory(name=OWNER), role=Role.MEMBER)
    return user


@pytest.fixture
def api(member):
    _, raw = account_services.token_create(user=member, name="bad-input")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.get("/api/v1/entities", {"limit": 1})  # the token's first use is audited now, not in an example
    return client


@pytest.fixture
def browser(member):
    """A signed-in session client that enforces CSRF like a browser's requests meet it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    return client




def write(tmp_path, content: str | bytes):
    path = tmp_path / f"d{next(_files)}" / "catalog-info.yaml"
    path.parent.mkdir()
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", errors="surrogatepass"))
    return path


WHOLE_FILE = ("file is larger than",)  # a problem of the whole file has no line of its own


def assert_located(errors: list[dict]) -> None:
    """Every descriptor error says what is wrong and where (a line or a field)."""
    for error in errors:
        assert error["message"].strip(), error
        if not error["message"].startswith(WHOLE_FILE):
            assert error.get("line") is not None or error.get("field"), f"error without a place: {error}"


# -- validate ---------------------------------------------------------------------------------------


@hostile.budget(ci=40)
@given(text=hostile.descriptor_text(OWNER))
def test_validate_answers_any_descriptor_text_clearly(api, text):
    before = hostile.digest(*WRITTEN)
    response = api.post("/api/v1/validate-entity", {"yaml": text}, content_type="application/json")
    hostile.assert_clear(response)
    assert hostile.digest(*WRITTEN) == before
    if hostile.too_large(response):
        return
    body = response.json()
    if "error" in body:  # refused by the API's parser: a NUL character (portal.core.api)
        assert response.status_code == 400 and "Null characters" in body["error"]["message"], body
        return
    assert response.status_code == (200 if body.get("valid") else 400), body
    if response.status_code == 400:
        assert body["errors"], body
        assert_located(body["errors"])
    assert hostile.digest(*WRITTEN) == before


@hostile.budget(ci=30)
@given(body=st.one_of(
    hostile.hostile_descriptor(OWNER).map(lambda doc: {"entity": doc}),
    hostile.HOSTILE_VALUES.map(lambda v: {"entity": v}),
    hostile.HOSTILE_VALUES.map(lambda v: {"yaml": v}),
    hostile.HOSTILE_VALUES,
))
def test_validate_answers_any_json_body_clearly(api, body):
    before = hostile.digest(*WRITTEN)
    response = api.post("/api/v1/validate-entity", json.dumps(body), content_type="application/json")
    hostile.assert_clear(response, names=["entity", "yaml", "body", "JSON", "errors", "Null characters"])
    if response.status_code == 400 and "errors" in response.json():
        assert_located(response.json()["errors"])
    assert hostile.digest(*WRITTEN) == before


# -- registration -------------------------------------------------------------------------------


@hostile.budget(ci=25)
@given(content=st.one_of(hostile.descriptor_text(OWNER),
                         hostile.descriptor_text(OWNER).map(lambda t: t.encode() + b"\xff\xfe\x80")))
def test_registering_any_descriptor_file_is_planned_then_stored_as_planned(api, tmp_path, content):
    """Dry run: a clear answer and nothing stored. Real: the same plan; a refusal stores nothing; what is
    stored is indexed, and every stored processing error has a line or a field."""
    path = write(tmp_path, content)
    with hostile.rolled_back():
        before = hostile.digest(*WRITTEN)
        dry = api.post("/api/v1/locations", {"target": str(path), "dryRun": True}, content_type="application/json")
        hostile.assert_clear(dry, names=["target"])
        assert hostile.digest(*WRITTEN) == before, "a dry run stored something"
        real = api.post("/api/v1/locations", {"target": str(path)}, content_type="application/json")
        hostile.assert_clear(real, names=["target"])
        if real.status_code >= 400:
            assert hostile.digest(*WRITTEN) == before, "a refused registration stored something"
            return
        plan, stored = dry.json(), real.json()
        assert stored["added"] == plan["added"] and stored["errors"] == plan["errors"]
        assert_located(stored["errors"])
        assert sorted(Entity.objects.values_list("ref", flat=True)) == plan["added"]
        assert sorted(SearchDocument.objects.values_list("key", flat=True)) == plan["added"]


@hostile.budget(ci=25)
@given(target=hostile.LOCATION_TARGETS)
def test_hostile_targets_are_refused_naming_the_target(api, browser, target):
    """Targets outside the allowed roots, private or odd URLs, junk: 400 naming the target, nothing stored
    (also through the HTML page, whose POST carries the CSRF token)."""
    before = hostile.digest(*WRITTEN)
    for dry_run in (True, False):
        response = api.post("/api/v1/locations", {"target": target, "dryRun": dry_run}, content_type="application/json")
        hostile.assert_clear(response, names=["target"])
        assert response.status_code == 400 or hostile.too_large(response), response.content
    response = browser.post("/catalog/register/", {"target": target, "confirm": "1", "csrfmiddlewaretoken": _csrf(browser)})
    hostile.assert_clear(response, names=["target", "Location", "This field is required"])
    assert response.status_code == 400 or hostile.too_large(response)
    assert hostile.digest(*WRITTEN) == before


def _csrf(client) -> str:
    page = client.get("/catalog/register/")
    assert page.status_code == 200
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


@hostile.budget(ci=15)
@given(text=hostile.descriptor_text(OWNER))
def test_the_register_page_shows_any_file_clearly_and_stores_only_on_confirm(browser, tmp_path, text):
    path = write(tmp_path, text)
    token = _csrf(browser)
    with hostile.rolled_back():
        before = hostile.digest(*WRITTEN)
        preview = browser.post("/catalog/register/", {"target": str(path), "csrfmiddlewaretoken": token})
        hostile.assert_clear(preview, names=["target", "Location"])
        assert hostile.digest(*WRITTEN) == before, "the preview stored something"
        confirmed = browser.post("/catalog/register/", {"target": str(path), "confirm": "1",
                                                        "csrfmiddlewaretoken": token})
        hostile.assert_clear(confirmed, names=["target", "Location"])
        if confirmed.status_code >= 400:
            assert hostile.digest(*WRITTEN) == before
        else:
            assert confirmed.status_code == 302 and Location.objects.filter(target=str(path)).exists()


def test_the_register_page_refuses_a_post_without_its_csrf_token(browser, tmp_path):
    path = write(tmp_path, "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: no-token}\n"
                           f"spec: {{type: service, lifecycle: production, owner: {OWNER}}}\n")
    before = hostile.digest(*WRITTEN)
    response = browser.post("/catalog/register/", {"target": str(path), "confirm": "1"})
    assert response.status_code == 403 and "CSRF" in response.content.decode()
    assert hostile.digest(*WRITTEN) == before


def test_a_nul_written_as_an_escape_is_reported_on_its_line(api, tmp_path):
    """YAML's "\\0" and JSON's "\\u0000" escapes make a NUL no reader check sees in the raw text; it is a
    descriptor error on its line (PostgreSQL could not store it), and the other documents still register."""
    good = (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: clean}}\n"
            f"spec: {{type: service, lifecycle: production, owner: {OWNER}}}\n")
    path = write(tmp_path, good + '---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n'
                 '  name: dirty\n  description: "a\\0b"\n'
                 f"spec: {{type: service, lifecycle: production, owner: {OWNER}}}\n")
    response = api.post("/api/v1/locations", {"target": str(path)}, content_type="application/json")
    hostile.assert_clear(response)
    body = response.json()
    assert body["added"] == ["component:default/clean"]
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(10, "metadata.description")], body["errors"]
    assert "NUL" in body["errors"][0]["message"]


def test_a_path_outside_the_roots_is_refused_alike_whether_it_exists_or_not(api, browser):
    """The roots are checked before the file system is asked: no answer tells what exists outside them."""
    answers = set()
    for target in ("/etc/passwd", "/etc/no-such-file-here", "/proc/self/environ", "/" + "x" * 300):
        response = api.post("/api/v1/locations", {"target": target, "dryRun": True}, content_type="application/json")
        assert response.status_code == 400
        answers.add(response.json()["error"]["message"].replace(target, "<target>"))
    assert len(answers) == 1 and "outside the folders the catalog may read" in answers.pop()
