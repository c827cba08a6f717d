"""HEAD answers wherever GET does, as HTTP asks (RFC 9110 §9.3.2): the same status and headers, no body.
DRF's function views allow only the methods their decorator lists, so every API view that reads lists
HEAD too (a monitor's or a link checker's HEAD was a 405 on every API read). A view that also writes
treats HEAD as the read, never as the write."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from catalog.models import Location
from tests.factories import EntityFactory, UserFactory


def _views():
    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    return list(walk(get_resolver().url_patterns, ""))


def test_every_api_view_that_answers_get_answers_head():
    api_views = [(route, getattr(cb, "cls", None)) for route, cb in _views() if getattr(cb, "cls", None)]
    assert len(api_views) > 40  # the walk found the API
    missing = [route for route, cls in api_views
               if "get" in cls.http_method_names and "head" not in cls.http_method_names]
    assert missing == []


@pytest.mark.django_db
def test_head_of_an_api_read_is_the_get_without_its_body():
    client = Client()
    client.force_login(UserFactory(username="heady"))
    EntityFactory(kind="Dataset", name="orders")
    get, head = client.get("/api/v1/entities"), client.head("/api/v1/entities")
    assert get.status_code == head.status_code == 200
    assert head["Content-Type"] == get["Content-Type"] and head.content == b""
    assert client.head("/api/v1/entities/by-name/dataset/default/nope").status_code == 404


@pytest.mark.django_db
def test_head_on_a_view_that_also_writes_only_reads():
    client = Client()
    client.force_login(UserFactory(username="heady", is_staff=True, is_superuser=True))
    before = Location.objects.count()
    assert client.head("/api/v1/locations").status_code == 200
    assert client.head("/api/v1/lineage", {"nodeId": "job:airflow:nope"}).status_code == 404
    assert Location.objects.count() == before
