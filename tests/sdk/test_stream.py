"""Full listings stream (`GET /api/v1/entities/export`) on both clients: the same entities as the paged
list, projections as asked, and a connection dropped in the middle of the stream taken up again from the
last checkpoint (a real TCP proxy cuts it) without losing or repeating an entity."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from plinth_sdk import AsyncClient, Client, errors

from catalog import export
from tests.faults import CuttingProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 6)  # several checkpoints in the demo catalog


def test_a_full_listing_streams_what_the_pages_list(portal, small_chunks):
    with Client(portal.url, portal.token("carol")) as client:
        streamed = [e.raw for e in client.entities.list()]
        pages = {e.ref: e.raw for e in client.entities.list(order="metadata.name", page_size=7)}
        models = [e.ref for e in client.entities.list(kind="model")]
        projected = list(client.entities.list(fields=["kind", "metadata.name"]))
    assert len(streamed) == len(pages) > 12
    assert {f"{r['kind']}:{r['metadata']['namespace']}/{r['metadata']['name']}".lower(): r for r in streamed} == pages
    assert "model:default/chargeback-predictor" not in pages  # fraud-ml's private model
    assert sorted(models) == sorted(r for r in pages if r.startswith("model:"))
    # The uid the client asks for to resume by is taken away again: the projection is as asked.
    assert projected and all(set(e.raw) == {"kind", "metadata"} and set(e.raw["metadata"]) == {"name"}
                             for e in projected)


def test_a_dropped_connection_is_resumed_from_the_last_checkpoint(portal, small_chunks):
    proxy = CuttingProxy(portal.url, after=9000, cuts=2)  # two breaks, each some chunks in
    try:
        with Client(proxy.url, portal.token("alice"), backoff=0.01) as client:
            refs = [e.ref for e in client.entities.list()]
        with Client(portal.url, portal.token("alice")) as client:
            expected = sorted(e.ref for e in client.entities.list(order="metadata.name"))
    finally:
        proxy.close()
    assert proxy.connections >= 3  # the first two were cut
    assert len(refs) == len(set(refs)) and sorted(refs) == expected


def test_a_stream_cut_every_time_gives_up_with_an_unreachable_error(portal, small_chunks):
    proxy = CuttingProxy(portal.url, after=600, cuts=100)  # never past the first chunk
    try:
        with Client(proxy.url, portal.token("alice"), backoff=0.01, max_retries=2) as client, \
                pytest.raises(errors.UnreachableError):
            list(client.entities.list())
    finally:
        proxy.close()
    assert proxy.connections == 3


def test_a_bad_filter_is_a_validation_error_naming_it(portal):
    with Client(portal.url, portal.token("alice")) as client, pytest.raises(errors.ValidationError) as bad:
        list(client.entities.list(filter="colour=red"))
    assert bad.value.status == 400 and bad.value.field == "filter"


def test_the_async_client_streams_and_resumes_the_same(portal, small_chunks):
    proxy = CuttingProxy(portal.url, after=9000, cuts=1)

    async def main():
        async with AsyncClient(proxy.url, portal.token("alice"), backoff=0.01) as client:
            return [e.ref async for e in client.entities.list()]

    try:
        with ThreadPoolExecutor(1) as pool:
            refs = pool.submit(asyncio.run, main()).result(timeout=60)
        with Client(portal.url, portal.token("alice")) as client:
            expected = sorted(e.ref for e in client.entities.list())
    finally:
        proxy.close()
    assert proxy.connections >= 2 and len(refs) == len(set(refs)) and sorted(refs) == expected


def test_the_documented_full_listing_runs(portal, cli_env, tmp_path):
    """sdk/docs/index.md, "Listing everything": its Python block, as a user runs it."""
    from tests.sdk.test_docs import run_python, sections

    [(lang, code)] = sections("index.md")["Listing everything"]
    env = {**cli_env, "PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    assert lang == "python" and run_python(code, env, tmp_path).stdout.strip() == "fraud-ml"


def test_the_client_follows_a_hand_over(portal, small_chunks, monkeypatch):
    monkeypatch.setattr(export, "MAX_SECONDS", 0)  # every response ends after one chunk, with a cursor
    with Client(portal.url, portal.token("alice")) as client:
        refs = [e.ref for e in client.entities.list()]
        expected = sorted(e.ref for e in client.entities.list(order="metadata.name"))
    assert len(refs) == len(set(refs)) and sorted(refs) == expected
