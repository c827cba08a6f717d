"""Every shipped template's generated project builds its docs without errors, with the real docs builder
(issue 15: the ML model service's docs linked outside their folder, `../model-card.md`)."""

from __future__ import annotations

import pytest

from catalog.models import Entity
from portal.scaffolder.models import RunStatus
from portal.techdocs import builder
from portal.techdocs import services as techdocs

from .conftest import BUILTIN, ml_values, run_inline, start, unique

pytestmark = pytest.mark.django_db

# template: (user, values for a name, does the generated project carry a docs site?)
SHIPPED = {
    "ml-model-service": ("alice", lambda name: ml_values(name), True),
    "feature-set": ("dan", lambda name: {"name": name, "owner": "recsys", "entityName": "customer",
                                         "joinKey": "customer_id", "features": "orders_7d:INT64"}, False),
    "training-pipeline": ("alice", lambda name: {"name": name, "owner": "fraud-ml", "schedule": "0 3 * * 1",
                                                 "orchestrator": "airflow", "outputName": f"{name}-out",
                                                 "inputs": ["dataset:default/card-transactions-2025"]}, False),
}


def test_every_shipped_template_is_covered():
    shipped = {p.name for p in BUILTIN.iterdir() if (p / "template.yaml").is_file()}
    assert shipped == set(SHIPPED)


@pytest.mark.parametrize("template", sorted(SHIPPED))
def test_generated_docs_build_without_errors(org, scaffolder_root, template):
    username, values, has_docs = SHIPPED[template]
    name = unique("docs")
    run = run_inline(start(org["users"][username], template, values(name)))
    assert run.status == RunStatus.SUCCEEDED, run.error
    generated = [e for e in Entity.objects.filter(name_key__startswith=name) if builder.techdocs_ref(e)]
    assert bool(generated) == has_docs, [e.ref for e in generated]
    for entity in generated:
        site = techdocs.docs_build(entity=entity, force=True)
        assert site.errors == [], site.errors
        assert site.status == "ok", site.status
        pages = list(site.pages.values_list("path", "html"))
        assert len(pages) >= 3 and all(html for _, html in pages)
        index = dict(pages)[""]
        assert "model-card.md" in index and "Model card" in index  # said where it is, not a dead link
