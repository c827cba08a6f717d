"""Model cards: rendered on the model page, facts for governance policies, errors surfaced."""

import pytest

from catalog import services as catalog_services
from catalog.models import Entity
from portal.techdocs import selectors, services
from portal.techdocs.models import ModelCard

pytestmark = pytest.mark.django_db

MODEL = """apiVersion: plinth.dev/v1alpha1
kind: Model
metadata: {{name: {name}}}
spec: {{type: classifier, lifecycle: production, owner: fraud-ml, modelCard: {card}}}
"""


def register_model(tmp_path, name: str, card_path: str, card: str | bytes | None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "catalog-info.yaml").write_text(MODEL.format(name=name, card=card_path))
    if card == "symlink":
        (folder / card_path).symlink_to(tmp_path / "outside.md")
    elif card is not None:
        target = folder / card_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(card) if isinstance(card, bytes) else target.write_text(card)
    catalog_services.location_register(target=str(folder / "catalog-info.yaml"), actor=None, file_roots=None)
    return Entity.objects.select_related("location").get(ref=f"model:default/{name}")


def test_demo_model_card_renders_on_the_model_page(client, demo_org):
    entity = Entity.objects.get(ref="model:default/fraud-detector")
    services.entity_docs_build(entity=entity)
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/model/default/fraud-detector/model-card/").content.decode()
    assert 'data-testid="model-card"' in html and "<h2 id=\"doc-intended-use\">Intended use</h2>" in html
    assert "<dt>owners</dt><dd>fraud-ml</dd>" in html
    overview = client.get("/catalog/model/default/fraud-detector/").content.decode()
    assert 'data-testid="model-card-panel"' in overview and "✓ Present · 5 sections" in overview


def test_facts_for_governance(demo_org):
    entity = Entity.objects.get(ref="model:default/fraud-detector")
    facts = selectors.model_card_facts(entity)  # never built: read from the file
    assert facts["present"] and facts["section_keys"] == [
        "intended_use", "training_data", "metrics", "limitations", "ethical_considerations"]
    assert facts["front_matter"]["owners"] == ["fraud-ml"] and facts["missing_sections"] == []
    services.entity_docs_build(entity=entity)
    assert selectors.model_card_facts(entity)["sections"] == facts["sections"]
    without = Entity.objects.get(ref="model:default/chargeback-predictor")
    assert selectors.model_card_facts(without)["present"] is False


def test_missing_sections_are_reported(tmp_path, demo_org):
    entity = register_model(tmp_path, "thin", "card.md", "---\nowners: [fraud-ml]\n---\n# Thin\n\n## Metrics\nAUC\n")
    card = services.model_card_build(entity=entity)
    facts = selectors.model_card_facts(entity)
    assert card.status == "ok" and facts["sections"] == ["Metrics"]
    assert "intended_use" in facts["missing_sections"] and "metrics" not in facts["missing_sections"]


@pytest.mark.parametrize("card_path, card, message", [
    ("card.md", None, "does not exist"),
    ("link.md", "symlink", "outside the registered location's folder"),
    ("card.md", b"# x\x00\x00", "looks binary"),
    ("card.md", "# Big\n" + "x" * (600 * 1024), "over the 512 KiB cap"),
])
def test_bad_model_cards_fail_clearly(tmp_path, demo_org, client, card_path, card, message):
    (tmp_path / "outside.md").write_text("# Not yours\n")
    entity = register_model(tmp_path, "bad", card_path, card)
    stored = services.model_card_build(entity=entity)
    assert stored.status == "failed" and message in stored.error
    assert selectors.model_card_facts(entity)["present"] is False
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/model/default/bad/model-card/").content.decode()
    assert 'data-testid="model-card-error"' in html and message.split("'")[0] in html


def test_malformed_front_matter_is_shown_but_the_card_renders(tmp_path, demo_org):
    entity = register_model(tmp_path, "fm", "card.md", "---\nowners: [unclosed\n---\n# Card\n\n## Intended use\n")
    card = services.model_card_build(entity=entity)
    assert card.status == "partial" and "Malformed YAML front matter" in card.error
    assert card.sections == ["Intended use"]


def test_model_card_api(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    body = client.get("/api/v1/techdocs/model-cards/default/fraud-detector").json()
    assert body["present"] and body["entityRef"] == "model:default/fraud-detector"
    client.force_login(demo_org["users"]["carol"])
    assert client.get("/api/v1/techdocs/model-cards/default/chargeback-predictor").status_code == 404
    assert ModelCard.objects.count() == 0  # facts of an unbuilt card are not stored by reads
