"""The register page's example descriptor is valid against the demo catalog: it registers without errors
and every entity it refers to exists (issue 15: it pointed at entities that do not exist)."""

from __future__ import annotations

import html

import pytest

from catalog import services
from catalog.forms import SAMPLE_DESCRIPTOR
from catalog.models import Entity

pytestmark = pytest.mark.django_db


def test_the_sample_on_the_register_page_registers_cleanly(demo_org, client, tmp_path, settings):
    client.force_login(demo_org["users"]["alice"])
    page = client.get("/catalog/register/").content.decode()
    shown = html.unescape(page.split('<pre data-testid="sample-descriptor">', 1)[1].split("</pre>", 1)[0])
    assert shown == SAMPLE_DESCRIPTOR
    (tmp_path / "catalog-info.yaml").write_text(shown)
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    plan = services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=demo_org["users"]["alice"],
                                      file_roots=settings.PLINTH_CATALOG_FILE_ROOTS, dry_run=True)
    assert not plan.errors, [str(e) for e in plan.errors]
    [candidate] = plan.added
    assert candidate.ref == "model:default/card-fraud-scorer"
    targets = {ref for _, ref in candidate.relations}
    assert {"group:default/fraud-ml", "system:default/fraud-detection",
            "featureset:default/card-transactions-features", "dataset:default/card-transactions-2025"} <= targets
    missing = targets - set(Entity.objects.filter(ref__in=targets).values_list("ref", flat=True))
    assert not missing, f"the sample refers to entities the demo catalog lacks: {missing}"
