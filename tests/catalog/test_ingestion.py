"""Registering, refreshing and unregistering locations: what is stored, flagged and refused."""

import textwrap

import pytest

from catalog import services
from catalog.models import Entity, EntityTag, Location, ProcessingError, Relation
from portal.accounts.models import Team
from portal.core.models import AuditEvent

pytestmark = pytest.mark.django_db

MODEL = textwrap.dedent("""\
    apiVersion: plinth.dev/v1alpha1
    kind: Model
    metadata:
      name: {name}
      description: {description}
      tags: [fraud]
    spec:
      type: classifier
      lifecycle: production
      owner: {owner}
      consumesFeatures: [card-features]
      trainedOn: [transactions]
    """)
GROUP = textwrap.dedent("""\
    apiVersion: backstage.io/v1alpha1
    kind: Group
    metadata:
      name: {name}
    spec:
      type: team
      children: []
    """)


def register(path, **kw):
    return services.location_register(target=str(path), actor=None, file_roots=None, **kw)


def snapshot():
    return (sorted(Entity.objects.values_list("ref", "content_hash")),
            Relation.objects.count(), EntityTag.objects.count(), Location.objects.count())


def test_demo_catalog_is_stored_with_relations_in_both_directions(demo_org):
    detector = Entity.objects.get(ref="model:default/fraud-detector")
    assert detector.owner_team.name == "fraud-ml"
    assert detector.title == "Fraud detector" and detector.lifecycle == "production"
    rels = set(Relation.objects.filter(source_ref=detector.ref).values_list("type", "target_ref"))
    assert ("ownedBy", "group:default/fraud-ml") in rels
    assert ("partOf", "system:default/fraud-detection") in rels
    assert ("consumesFeatures", "featureset:default/card-transactions-features") in rels
    assert ("trainedOn", "dataset:default/card-transactions-2025") in rels
    inverse = set(Relation.objects.filter(target_ref=detector.ref).values_list("source_ref", "type"))
    assert ("group:default/fraud-ml", "ownerOf") in inverse
    assert ("featureset:default/card-transactions-features", "featuresConsumedBy") in inverse
    api = Entity.objects.get(ref="api:default/fraud-scoring-api")
    assert api.spec["definition"].startswith("openapi: 3.0.3"), "$text was substituted"
    assert Entity.objects.get(ref="model:default/chargeback-predictor").visibility == "private"
    assert Team.objects.filter(name="ml-org").exists(), "a Group entity is a team"


def test_a_new_entity_is_visible_at_once_and_dangling_targets_are_kept(write_tree, client, django_user_model):
    root = write_tree({"catalog-info.yaml": GROUP.format(name="fraud-ml") + "---\n" +
                       MODEL.format(name="scorer", description="x", owner="fraud-ml")})
    plan = register(root / "catalog-info.yaml")
    assert sorted(c.ref for c in plan.added) == ["group:default/fraud-ml", "model:default/scorer"]
    user = django_user_model.objects.create(username="u")
    client.force_login(user)
    page = client.get("/catalog/model/default/scorer/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "featureset:default/card-features" in html and "missing" in html, "dangling target flagged"


def test_dry_run_changes_nothing(write_tree):
    root = write_tree({"catalog-info.yaml": MODEL.format(name="scorer", description="x", owner="team-a")})
    before = snapshot()
    events = AuditEvent.objects.count()
    plan = register(root / "catalog-info.yaml", dry_run=True)
    assert [c.ref for c in plan.added] == ["model:default/scorer"]
    assert snapshot() == before and AuditEvent.objects.count() == events


def test_refresh_skips_unchanged_files_updates_changed_and_orphans_removed(write_tree, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    root = write_tree({
        "a/catalog-info.yaml": MODEL.format(name="one", description="first", owner="t"),
        "b/catalog-info.yaml": MODEL.format(name="two", description="second", owner="t"),
    })
    register(root)
    location = Location.objects.get()
    plan = services.location_refresh(location=location)
    assert plan.read.unchanged_sources == set(plan.read.sources), "unchanged files are not re-parsed"
    assert not (plan.added or plan.changed or plan.removed)

    (root / "a/catalog-info.yaml").write_text(MODEL.format(name="one", description="changed", owner="t"))
    (root / "b/catalog-info.yaml").unlink()
    plan = services.location_refresh(location=location)
    assert [c.ref for _, c in plan.changed] == ["model:default/one"]
    assert Entity.objects.get(ref="model:default/one").description == "changed"
    orphan = Entity.objects.get(ref="model:default/two")
    assert orphan.orphan and orphan.location is None
    assert ProcessingError.objects.filter(location=location).count() == 0


def test_orphans_can_be_deleted_by_setting(write_tree, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    root = write_tree({"catalog-info.yaml": MODEL.format(name="one", description="x", owner="t") + "---\n" +
                       MODEL.format(name="two", description="x", owner="t")})
    register(root / "catalog-info.yaml")
    (root / "catalog-info.yaml").write_text(MODEL.format(name="one", description="x", owner="t"))
    services.location_refresh(location=Location.objects.get())
    assert not Entity.objects.filter(ref="model:default/two").exists()


def test_second_location_claiming_an_entity_is_rejected_naming_both(write_tree):
    first = write_tree({"catalog-info.yaml": MODEL.format(name="shared", description="first", owner="t")}, "one")
    second = write_tree({"catalog-info.yaml": MODEL.format(name="shared", description="second", owner="t")}, "two")
    register(first / "catalog-info.yaml")
    plan = register(second / "catalog-info.yaml")
    message = str(plan.errors[0])
    assert "model:default/shared" in message and "one/catalog-info.yaml" in message and "two/catalog-info.yaml" in message
    assert Entity.objects.get(ref="model:default/shared").description == "first"
    assert ProcessingError.objects.filter(location__target__endswith="two/catalog-info.yaml").count() == 1


def test_invalid_document_is_reported_and_the_valid_ones_stored(write_tree):
    bad = "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: bad name!\nspec:\n  owner: t\n"
    root = write_tree({"catalog-info.yaml": MODEL.format(name="good", description="x", owner="t") + "---\n" + bad})
    plan = register(root / "catalog-info.yaml")
    assert [c.ref for c in plan.added] == ["model:default/good"]
    error = ProcessingError.objects.get()
    assert error.field == "metadata.name" and error.line and error.source.endswith("catalog-info.yaml")


def test_an_entity_that_becomes_invalid_is_kept_and_flagged(write_tree):
    root = write_tree({"catalog-info.yaml": MODEL.format(name="good", description="x", owner="t")})
    register(root / "catalog-info.yaml")
    (root / "catalog-info.yaml").write_text(MODEL.format(name="good", description="x", owner="t") + "  riskTier: 99\n")
    plan = services.location_refresh(location=Location.objects.get())
    assert plan.errors and not plan.removed
    entity = Entity.objects.get(ref="model:default/good")
    assert entity.error_count == 1 and not entity.orphan


def test_unregister_removes_the_location_and_its_entities(write_tree):
    root = write_tree({"catalog-info.yaml": MODEL.format(name="one", description="x", owner="t")})
    register(root / "catalog-info.yaml")
    refs = services.location_unregister(location=Location.objects.get(), actor=None)
    assert refs == ["model:default/one"]
    assert not Entity.objects.exists() and not Relation.objects.exists()
    assert AuditEvent.objects.filter(action="catalog.location.unregister").exists()


@pytest.mark.parametrize("name,content,field", [
    ("python-tag", "!!python/object/apply:os.system ['echo hi']\n", ""),
    ("duplicate-keys", "apiVersion: v1\nkind: Model\nkind: Dataset\n", ""),
    ("alias-bomb", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                   "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                   "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                   "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
                   "j: &j [*i,*i,*i,*i,*i,*i,*i,*i,*i]\nk: &k [*j,*j,*j,*j,*j,*j,*j,*j,*j]\n"
                   "l: &l [*k,*k,*k,*k,*k,*k,*k,*k,*k]\n", ""),
    ("deep", "a: " + "[" * 500 + "]" * 500 + "\n", ""),
    ("unknown-kind", "apiVersion: backstage.io/v1alpha1\nkind: Spaceship\nmetadata: {name: x}\nspec: {}\n", "kind"),
    ("unknown-apiversion", "apiVersion: example.com/v9\nkind: Component\nmetadata: {name: x}\nspec: {}\n", "apiVersion"),
    ("zero-width", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: \"da\u200bta\"}\nspec: {owner: t}\n",
     "metadata.name"),
    ("homoglyph", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: \"d\u0430ta\"}\nspec: {owner: t}\n",
     "metadata.name"),
    ("javascript-link", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: x\n  links:\n"
                        "    - url: javascript:alert(1)\nspec: {owner: t}\n", "metadata.links"),
    ("bad-ref", "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\nspec: {owner: 'a:b:c/d/e'}\n",
     "spec.owner"),
    # Text urllib cannot read as a URL (an unbalanced bracket in the host): a message, not a crash that
    # failed the registration with a 500 and the location's every refresh after it.
    ("bracket-link", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: x\n  links:\n"
                     "    - url: 'https://[grafana.example/d/x'\nspec: {owner: t}\n", "metadata.links"),
    ("bracket-uri", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: x}\n"
                    "spec: {owner: t, uri: 'https://x]/data'}\n", "spec.uri"),
    ("bracket-model-card", "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\n"
                           "spec: {owner: t, modelCard: '//[x/card.md'}\n", "spec"),
    ("bracket-placeholder", "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: x}\n"
                            "spec: {owner: t, description: {$text: 'https://[x/readme.md'}}\n", ""),
])
def test_hostile_descriptors_are_rejected_and_nothing_changes(write_tree, demo_org, name, content, field):
    root = write_tree({"catalog-info.yaml": content}, name)
    before = snapshot()
    plan = register(root / "catalog-info.yaml")
    assert plan.errors, f"{name} was accepted"
    error = plan.errors[0]
    assert error.source.endswith("catalog-info.yaml")
    if field:
        assert error.field.startswith(field), (error.field, error.message)
    entities, relations, tags, locations = snapshot()
    assert (entities, relations, tags) == before[:3]
    assert locations == before[3] + 1, "the location is kept, with its errors, for the owner to fix"


def test_oversized_file_is_refused(write_tree, settings):
    settings.PLINTH_CATALOG_MAX_BYTES = 1000
    root = write_tree({"catalog-info.yaml": MODEL.format(name="big", description="x" * 2000, owner="t")})
    plan = register(root / "catalog-info.yaml")
    assert "cap" in plan.errors[0].message and not Entity.objects.exists()


def test_location_targets_and_text_cannot_escape_the_folder(write_tree, tmp_path):
    (tmp_path / "secret.txt").write_text("top secret")
    root = write_tree({"catalog-info.yaml": textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata: {name: escape}
        spec:
          targets: [../secret.txt, /etc/passwd]
        ---
        apiVersion: backstage.io/v1alpha1
        kind: API
        metadata: {name: leak}
        spec:
          type: openapi
          lifecycle: production
          owner: t
          definition:
            $text: ../secret.txt
        """)})
    plan = register(root / "catalog-info.yaml")
    messages = " ".join(str(e) for e in plan.errors)
    assert "escape" in messages.lower() or "outside" in messages.lower()
    assert not Entity.objects.filter(ref="api:default/leak").exists()
    assert "top secret" not in str(list(Entity.objects.values_list("data", flat=True)))


def test_audit_event_for_each_registration(write_tree):
    root = write_tree({"catalog-info.yaml": MODEL.format(name="one", description="x", owner="t")})
    register(root / "catalog-info.yaml")
    event = AuditEvent.objects.get(action="catalog.location.register")
    assert "model:default/one" in event.payload
