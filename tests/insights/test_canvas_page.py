"""The canvas page and its PDF: live values with target, trend and status; a KPI whose query fails is
shown broken with its reason while the rest renders; a canvas file that does not load is explained to
platform admins (with its path in the file) and refused politely to others; who may see it; the PDF
is one page (Chromium's print) and names every KPI."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from portal.accounts.models import Role
from portal.insights import canvas, kpis
from portal.insights.models import EventType, Grain, Rollup
from tests.factories import MembershipFactory, UserFactory
from tests.insights.test_canvas import MINIMAL_TEXT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_each_backend")]
POPPLER = shutil.which("pdfinfo") and shutil.which("pdftotext")


@pytest.fixture
def admin(client):
    user = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(user)
    return user


def signed_in(client, role: str | None):
    user = UserFactory()
    if role:
        MembershipFactory(user=user, role=role)
    client.force_login(user)
    return user


def yesterday(hours: int = 0) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1) + timedelta(hours=hours)


def kpi_rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-kpi="([^"]+)" data-status="([^"]+)"', html))


def test_the_page_shows_values_targets_trends_and_links(client, admin):
    Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=yesterday(), type=EventType.TEMPLATE_RUN_SUCCEEDED,
                          subject="template:default/x", count=9, values=[40.0], value_sum=40, value_count=1)
    Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=yesterday(), type=EventType.TEMPLATE_RUN_FAILED,
                          subject="template:default/x", count=1)
    Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=yesterday() - timedelta(days=30),
                          type=EventType.TEMPLATE_RUN_SUCCEEDED, subject="template:default/x", count=1)
    Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=yesterday() - timedelta(days=30),
                          type=EventType.TEMPLATE_RUN_FAILED, subject="template:default/x", count=1)
    response = client.get(reverse("insights:canvas"))
    assert response.status_code == 200
    html = response.content.decode()
    statuses = kpi_rows(html)
    data = canvas.load()
    assert set(statuses) == {kpi["id"] for _, kpi in canvas.iter_kpis(data)}
    assert statuses["template-success"] == "amber"  # 90 % against ≥ 95 %, amber from 85 %
    assert statuses["template-duration"] == "green"  # 40 s against ≤ 60 s
    assert statuses["zero-result-searches"] == "nodata"
    row = html[html.index('data-kpi="template-success"'):]
    row = row[:row.index("</tr>")]
    assert "90 %" in row and "≥ 95 %" in row and "▲ +40 %" in row and "Amber" in row  # 50 % the period before
    for name in ("Data scientist", "ML engineer", "Reviewer (risk and compliance)", "Platform admin", "Leadership"):
        assert name in html
    assert f'href="{reverse("scaffolder:index")}"' in html and f'href="{reverse("insights:canvas-pdf")}"' in html
    assert "ML model service template" in html  # an entity provider not in this catalog: shown unlinked


def test_a_failing_kpi_is_broken_with_its_reason_and_the_rest_renders(client, admin, tmp_path, settings, monkeypatch):
    def explodes(period):
        with connection.cursor() as cursor:  # a real database error: the page's transaction must survive it
            cursor.execute("SELECT * FROM insights_no_such_table")

    monkeypatch.setitem(kpis.REGISTRY, "explodes", kpis.Query("explodes", explodes, "fails"))
    extra = """
              - id: unknown
                name: Unknown query KPI
                query: no_such_query
                unit: count
                direction: higher
                target: 1
                amber: 0
              - id: bad-param
                name: Bad parameter KPI
                query: approval_lead_time
                params: {percentile: 500}
                unit: hours
                direction: lower
                target: 1
                amber: 2
              - id: exploding
                name: Exploding KPI
                query: explodes
                unit: count
                direction: higher
                target: 1
                amber: 0
              - id: fine
                name: Healthy KPI
                query: event_count
                params: {type: registration}
                unit: count
                direction: higher
                target: 3
                amber: 1
"""
    path = tmp_path / "canvas.yaml"
    path.write_text(MINIMAL_TEXT + extra)
    settings.PLINTH_INSIGHTS_CANVAS = str(path)
    Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=yesterday(), type=EventType.REGISTRATION, count=2)
    response = client.get(reverse("insights:canvas"))
    assert response.status_code == 200
    html = response.content.decode()
    assert kpi_rows(html) == {"zero": "nodata", "unknown": "broken", "bad-param": "broken", "exploding": "broken",
                              "fine": "amber"}
    assert "unknown query &#x27;no_such_query&#x27;" in html
    assert "parameter &#x27;percentile&#x27; must be between 1 and 100, not 500" in html
    assert "the query failed: OperationalError: no such table: insights_no_such_table" in html or (
        "the query failed: ProgrammingError" in html)
    fine = html[html.index('data-kpi="fine"'):]
    assert ">2<" in fine[:fine.index("</tr>")]


def test_a_canvas_that_does_not_load_is_explained_to_platform_admins_only(client, tmp_path, settings):
    path = tmp_path / "canvas.yaml"
    path.write_text(MINIMAL_TEXT.replace("direction: lower", "direction: sideways"))
    settings.PLINTH_INSIGHTS_CANVAS = str(path)
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(reverse("insights:canvas"))
    assert response.status_code == 503
    assert ("canvas.yaml:20: personas[0].journeys[0].capabilities[0].kpis[0].direction: must be one of higher, "
            "lower; got &#x27;sideways&#x27;") in response.content.decode()
    signed_in(client, Role.ADMIN)
    response = client.get(reverse("insights:canvas"))
    assert response.status_code == 503
    assert "canvas.yaml" not in response.content.decode() and "A platform admin can see why" in response.content.decode()
    assert client.get(reverse("insights:canvas-pdf")).status_code == 503


@pytest.mark.parametrize(("role", "allowed"), [
    (None, False), (Role.VIEWER, False), (Role.MEMBER, False), (Role.MAINTAINER, False), (Role.REVIEWER, False),
    (Role.ADMIN, True),
])
def test_who_may_see_the_canvas(client, role, allowed):
    signed_in(client, role)
    assert client.get(reverse("insights:canvas")).status_code == (200 if allowed else 403)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("insights:canvas-pdf"))
    assert response.status_code == 302 and "sign-in" in response["Location"]


@pytest.mark.skipif(not POPPLER, reason="pdfinfo/pdftotext missing: `make system-deps` installs poppler-utils")
def test_the_pdf_is_one_page_naming_every_kpi(client, admin, tmp_path):
    Rollup.objects.create(grain=Grain.ORG_DAILY, bucket=yesterday(), type=EventType.REGISTRATION, count=12)
    response = client.get(reverse("insights:canvas-pdf"))
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    assert re.match(r'attachment; filename="plinth-capability-canvas-\d{4}-\d\d-\d\d\.pdf"',
                    response["Content-Disposition"])
    pdf = tmp_path / "canvas.pdf"
    pdf.write_bytes(response.content)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout  # noqa: S603, S607
    assert re.search(r"^Pages:\s+1$", info, re.MULTILINE), info
    assert "landscape" in info or re.search(r"Page size:\s+841.9\d x 59\d", info), info
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,  # noqa: S603, S607
                           check=True).stdout.split()
    for _, kpi in canvas.iter_kpis(canvas.load()):
        assert appears(kpi["name"], words), kpi["name"]
    assert appears("Plinth capability canvas", words) and "Leadership" in words


def appears(name: str, words: list[str]) -> bool:
    """The name's words in order, each within a few words of the last: pdftotext reads a wrapped table
    cell's lines interleaved with the neighbouring cell's ("Docs page views per / cards next to the
    code active user")."""
    wanted = name.split()
    for start, word in enumerate(words):
        if word != wanted[0]:
            continue
        at = start
        for part in wanted[1:]:
            window = words[at + 1:at + 8]
            if part not in window:
                break
            at += 1 + window.index(part)
        else:
            return True
    return False


def test_the_pdf_answers_503_when_chromium_cannot_print(client, admin, settings):
    settings.PLINTH_CHROMIUM = "/nonexistent/chromium"
    response = client.get(reverse("insights:canvas-pdf"))
    assert response.status_code == 503
    assert "The PDF could not be made: Chromium is not installed at /nonexistent/chromium" in response.content.decode()


@pytest.mark.skipif(not POPPLER, reason="pdfinfo/pdftotext missing: `make system-deps` installs poppler-utils")
def test_the_pdf_links_back_to_the_portal(client, admin, tmp_path):
    """Links in the PDF carry the portal's address (a relative link would point into the reader's disk)."""
    response = client.get(reverse("insights:canvas-pdf"))
    assert f'http://testserver{reverse("scaffolder:index")}'.encode() in response.content
