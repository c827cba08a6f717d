"""On a phone the Insights tables stack (class table-stack, see docs/ui.md): every data cell of such a
table names its column in a data-label (the row's header, or a cell spanning the row, heads the card)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from portal.insights import demo as insights_demo
from portal.insights.models import ActiveUserDay, TeamMilestone
from tests.insights.test_dashboards import SLUGS, client_for, url

pytestmark = pytest.mark.django_db


def test_every_cell_of_a_stacked_table_names_its_column(demo_org):
    insights_demo.load()
    assert ActiveUserDay.objects.exists() and TeamMilestone.objects.exists()
    admin = demo_org["users"]["grace"]
    stacked = 0
    for slug in SLUGS:
        html = client_for(admin).get(url(slug), {"to": timezone.now().date().isoformat()}).content.decode()
        for table in re.findall(r'<table class="table table-stack".*?</table>', html, flags=re.S):
            stacked += 1
            heads = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', table, flags=re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], flags=re.S):
                cells = re.findall(r"<td([^>]*)>", row)
                if len(cells) == 1 and "colspan" in cells[0]:
                    continue  # "No … in this period."
                labels = [re.search(r'data-label="([^"]*)"', c) for c in cells]
                assert all(labels), (slug, row[:200])
                assert [m.group(1) for m in labels] == [re.sub(r"<[^>]+>", "", h) for h in heads[-len(cells):]], slug
    assert stacked >= 7
