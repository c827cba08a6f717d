"""The docs build runs in a real Celery worker, queued on commit when an entity is registered."""

import time

import pytest

from catalog import services as catalog_services
from portal.techdocs.models import DocPage, DocSite
from portal.techdocs.tasks import build_entity_docs
from tests.techdocs.conftest import DESCRIPTOR, write

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, worker, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out; worker log:\n" + "\n".join(worker.log.splitlines()[-40:]))


def test_registering_an_entity_builds_its_docs_in_the_worker(celery_worker_process, tmp_path):
    root = write(tmp_path / "repo", {
        "catalog-info.yaml": DESCRIPTOR.format(name="worker-svc", title="Worker", ref="dir:./docs", owner="x", extra=""),
        "docs/index.md": "# Built by the worker\n\n[Next](next.md)\n",
        "docs/next.md": "# Next\n",
    })
    catalog_services.location_register(target=str(root / "catalog-info.yaml"), actor=None, file_roots=None)
    site = wait_for(lambda: DocSite.objects.filter(entity__ref="component:default/worker-svc", status="ok").first(),
                    celery_worker_process)
    assert site.page_count == 2
    first = DocPage.objects.get(site=site, path="")
    assert first.title == "Built by the worker"

    # Idempotent: the same task again leaves the unchanged pages alone.
    attempted = site.attempted_at
    build_entity_docs.delay(["component:default/worker-svc"])
    wait_for(lambda: DocSite.objects.filter(pk=site.pk, attempted_at__gt=attempted).exists(), celery_worker_process)
    assert DocPage.objects.get(site=site, path="").pk == first.pk

    # A refresh after a descriptor change rebuilds through the signal again.
    (root / "docs" / "index.md").write_text("# Rebuilt\n")
    (root / "catalog-info.yaml").write_text((root / "catalog-info.yaml").read_text().replace("Worker", "Worker 2"))
    catalog_services.location_refresh(location=site.entity.location)
    wait_for(lambda: DocPage.objects.filter(site=site, path="", title="Rebuilt").exists(), celery_worker_process)
