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


# A definition's highlighted source longer than this (in characters of source) is not sent with the tab
# when the tab has a summary above it (operations, channels, types, services), since it starts folded:
# the Source section fetches it when opened (views.definition_source). Plinth's own API (350 kB of
# YAML) made its tab a 1.7 MB page.
SOURCE_INLINE_MAX = 50_000


def definition_context(request, entity) -> dict:
    parsed = definitions.for_entity(entity)
    folded = bool(parsed.operations or parsed.channels or parsed.types or parsed.services)
    return {"td_def": parsed, "td_source_folded": folded,
            "td_source_lazy": folded and len(parsed.source) > SOURCE_INLINE_MAX}


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
