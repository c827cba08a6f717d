"""The SLO parts of entity pages: an "SLOs" tab and a badge in the header (one query)."""

from __future__ import annotations

from catalog import extensions

KINDS = {"model", "component", "api"}


def _applies(entity) -> bool:
    from .openslo import annotation_path

    return entity.kind_key in KINDS and annotation_path(entity.annotations) is not None


def _tab(request, entity) -> dict:
    from . import selectors

    return selectors.entity_slos(entity)


def _badge(request, entity) -> dict:
    from . import selectors

    return {"slo_badge": selectors.badge(entity), "entity": entity}


def register() -> None:
    extensions.register_tab(extensions.EntityTab(key="slos", label="SLOs", template="slo/inc/entity_tab.html",
                                                 applies=_applies, context=_tab, order=80))
    extensions.register_panel(extensions.EntityPanel(template="slo/inc/badge.html", where="actions",
                                                     applies=_applies, context=_badge))
