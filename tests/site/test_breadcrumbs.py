"""Breadcrumbs end with the page they lead to, never an empty crumb ("Catalog /", "Teams /"), and no
meta line ends in a separator: the crawl's checks (crawl.Page) on the pages that had them, quickly."""

from __future__ import annotations

import re

import pytest

from catalog.models import Location

from .crawl import Page

pytestmark = pytest.mark.django_db


def test_breadcrumbs_name_the_page_they_end_on(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    location = Location.objects.order_by("pk").first()
    expected = {
        "/catalog/register/": "Catalog / register",
        f"/catalog/locations/{location.pk}/": f"Locations / location {location.pk}",
        "/teams/fraud-ml/": "Teams / fraud-ml",
        "/reviews/policies/training_data/": "Reviews / policies / training_data.rego",
        "/reviews/new/?action=promote-model-version&target=model:default/fraud-detector":
            "Reviews / Fraud detector / new request",
    }
    for url, crumbs in expected.items():
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        parser = Page()
        parser.feed(html)
        parser.close()
        assert not [f for f in parser.faults if "crumb" in f or "separator" in f or "inside <p>" in f], (url, parser.faults)
        found = re.search(r'<p class="crumbs">(.*?)</p>', html, re.S).group(1)
        assert " ".join(re.sub(r"<[^>]+>", "", found).split()) == crumbs, url
