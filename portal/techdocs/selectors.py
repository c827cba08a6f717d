"""Reads of the docs app, always through the catalog's permission-filtered selectors."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions

from . import builder, modelcards
from .models import DocAsset, DocPage, DocSite, ModelCard

PLINTH_REFS = ("component:default/plinth",)  # the portal's own docs


def entity_for_docs(user, kind: str, namespace: str, name: str) -> Entity | None:
    """The entity if the user may see it; None for missing and hidden alike (the caller 404s)."""
    return catalog_selectors.entity_by_name(user, kind, namespace, name)


def site_for(entity: Entity) -> DocSite | None:
    return DocSite.objects.filter(entity=entity).first()


def page_for(entity: Entity, path: str) -> DocPage | None:
    """One indexed read: the page with its site (nav, build time, errors)."""
    return (DocPage.objects.select_related("site").defer("text", "site__nav")
            .filter(site__entity=entity, path=path).first())


def existing_pages(pages: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of these (entity id, page path) pairs are built pages now, in one read: a page recorded
    once (a usage event, a bookmark) may have been removed or renamed since. "" is the site's home,
    there whenever the site has a page (the home opens the first one when it has no index)."""
    pages = set(pages)
    if not pages:
        return set()
    rows = (DocPage.objects.filter(site__entity_id__in={entity_id for entity_id, _ in pages})
            .filter(Q(path__in={path for _, path in pages if path}) | Q(order=0))
            .values_list("site__entity_id", "path", "order"))
    found = set()
    for entity_id, path, order in rows:
        found.add((entity_id, path))
        if order == 0:
            found.add((entity_id, ""))
    return found & pages


def page_exists(entity: Entity, path: str) -> bool:
    """Whether the entity's site has a built page at `path` (for redirecting a URL typed without its slash)."""
    return DocPage.objects.filter(site__entity=entity, path=path).exists()


def asset_for(entity: Entity, path: str) -> DocAsset | None:
    return DocAsset.objects.filter(site__entity=entity, path=path).first()


def visible_sites(user) -> QuerySet[DocSite]:
    """Sites of the entities the user may see, Plinth's own docs first."""
    qs = permissions.filter_visible(DocSite.objects.select_related("entity"), user, prefix="entity__")
    return qs.annotate(first=Case(When(entity__ref__in=PLINTH_REFS, then=Value(0)), default=Value(1),
                                  output_field=IntegerField())).order_by("first", "entity__name_key", "id")


def visible_apis(user) -> QuerySet[Entity]:
    """API entities the user may see, by name (the index shows the first few and counts the rest)."""
    return catalog_selectors.entity_list(user).filter(kind_key="api").order_by("name_key", "id")


# How long the facts of a card not built yet stay cached (by its content hash: an edit is a new key).
CARD_FACTS_SECONDS = 24 * 3600


def model_card_facts(entity: Entity) -> dict:
    """What governance policies read about a model's card:
    {"present": bool, "sections": [...], "section_keys": [...], "front_matter": {...},
     "missing_sections": [...], "error": str, "built_at": iso | None}.
    Uses the stored build; a model never built yet is read from its file (not stored), and those facts
    are cached by the card's content hash: rendering the largest card (512 KiB) takes seconds, and the
    overview panel, the tab and governance each ask for them."""
    card = ModelCard.objects.filter(entity=entity).first()
    if card is None and modelcards.model_card_path(entity):
        return _unbuilt_card_facts(entity)
    return modelcards.facts_from(card)


def card_facts_key(source_hash: str) -> str:
    return f"techdocs:card-facts:{source_hash}"


def _unbuilt_card_facts(entity: Entity) -> dict:
    try:
        source = modelcards.read_card(entity)
        key = card_facts_key(source.source_hash)
        facts = cache.get(key)
        if facts is not None:
            return facts
        built = modelcards.render_card(source)
    except (builder.BuildError, OSError) as exc:
        facts = modelcards.facts_from(None)
        facts["error"] = str(exc)
        return facts
    built.status = "partial" if built.error else "ok"  # type: ignore[attr-defined]
    facts = modelcards.facts_from(built)
    cache.set(key, facts, CARD_FACTS_SECONDS)
    return facts
