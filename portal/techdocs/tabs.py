"""The docs app's contributions to the entity page (registered in apps.ready)."""

from __future__ import annotations

from django.utils.safestring import mark_safe

from catalog.extensions import EntityPanel, EntityTab, register_panel, register_tab

from . import builder, definitions, modelcards, selectors
from .models import ModelCard


def docs_context(request, entity) -> dict:
    site = selectors.site_for(entity)
    nav = mark_safe(builder.mark_current(site.nav_html, "")) if site else ""  # noqa: S308 (built escaped)
    return {"td_site": site, "td_nav": nav, "td_index": selectors.page_for(entity, "") if site else None}


def definition_context(request, entity) -> dict:
    return {"td_def": definitions.for_entity(entity)}


def model_card_context(request, entity) -> dict:
    card = ModelCard.objects.filter(entity=entity).first()
    front = [(str(k), _plain(v)) for k, v in (card.front_matter if card else {}).items()][:40]
    return {"td_card": card, "td_card_facts": selectors.model_card_facts(entity), "td_front": front,
            "td_card_declared": modelcards.model_card_path(entity)}


def _plain(value) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def model_card_panel(request, entity) -> dict:
    return {"facts": selectors.model_card_facts(entity), "declared": modelcards.model_card_path(entity)}


def register() -> None:
    register_tab(EntityTab(key="docs", label="Docs", template="techdocs/tab_docs.html",
                           applies=lambda e: bool(builder.techdocs_ref(e)), context=docs_context, order=20))
    register_tab(EntityTab(key="definition", label="Definition", template="techdocs/tab_definition.html",
                           applies=lambda e: e.kind_key == "api", context=definition_context, order=10))
    register_tab(EntityTab(key="model-card", label="Model card", template="techdocs/tab_model_card.html",
                           applies=lambda e: e.kind_key == "model", context=model_card_context, order=15))
    register_panel(EntityPanel(template="techdocs/panel_model_card.html", where="overview",
                               applies=lambda e: e.kind_key == "model", context=model_card_panel))
