"""`client.costs` and `plinth costs show|import` against the live server: a streamed multipart upload
(platform admins), the import read back, costs per team and per entity, and visibility."""

from __future__ import annotations

import json

import pytest
from plinth_sdk import Client
from plinth_sdk.errors import NotFoundError, PlinthError

from portal.costs import services
from tests.costs.conftest import DETECTOR, PRIVATE, line, write_csv

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_uploads_reads_the_import_and_the_costs(portal, demo_org, tmp_path):
    path = write_csv(tmp_path / "sdk.csv", [line("42", tags={"plinth-entity": DETECTOR}),
                                            line("8", tags={"plinth-entity": PRIVATE})])
    grace = Client(portal.url, token=portal.token("grace"))
    imp = grace.costs.upload(str(path), provider="aws")
    assert imp["status"] == "queued" and imp["file"] == "sdk.csv"
    services.run_import(imp["id"])  # what the worker does (tests/costs/test_worker.py runs it on one)
    done = grace.costs.import_status(imp["id"])
    assert done["status"] == "done" and done["rows"] == 2
    carol = Client(portal.url, token=portal.token("carol"))
    body = carol.costs.list(month="2026-01", group="entity")
    assert [(i["key"], float(i["effective"])) for i in body["items"]] == [(DETECTOR, 42.0)] and body["hidden"] == 1
    assert carol.costs.entity(DETECTOR)["months"][0]["effective"].startswith("42")
    with pytest.raises(NotFoundError):
        carol.costs.entity(PRIVATE)
    with pytest.raises(PlinthError):
        carol.costs.upload(str(path), provider="aws")  # platform admins only


def test_cli_imports_and_shows(portal, plinth, demo_org, tmp_path):
    path = write_csv(tmp_path / "cli.csv", [line("5", tags={"team": "recsys"})])
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("grace")}
    imported = plinth("-o", "json", "costs", "import", str(path), "--provider", "aws", env=env)
    assert imported.returncode == 0, imported.stderr
    services.run_import(json.loads(imported.stdout)["id"])
    shown = plinth("costs", "show", "--month", "2026-01", env=env)
    assert shown.returncode == 0 and "recsys" in shown.stdout and "5" in shown.stdout
    bad = write_csv(tmp_path / "bad.csv", [line("5")], header=["BilledCost", "ServiceName"])
    refused = plinth("costs", "import", str(bad), "--provider", "aws", env=env)
    assert refused.returncode != 0 and "missing required FOCUS columns" in refused.stderr


def test_the_async_client_uploads_too(portal, demo_org, tmp_path):
    """`AsyncClient.costs.upload` opens the file when the request is made, not when the call is built."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from plinth_sdk import AsyncClient

    path = write_csv(tmp_path / "async.csv", [line("3", tags={"plinth-entity": DETECTOR})])

    async def main():
        async with AsyncClient(portal.url, token=portal.token("grace")) as client:
            pending = client.costs.upload(str(path), provider="aws")
            await asyncio.sleep(0)
            return await pending

    # A thread of its own: Playwright's sync API may have left an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        imp = pool.submit(asyncio.run, main()).result(timeout=60)
    assert imp["status"] == "queued" and imp["file"] == "async.csv"
