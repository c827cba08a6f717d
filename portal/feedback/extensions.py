"""The feedback part of entity pages: "Was this useful?" on the Overview tab (catalog/extensions.py)."""

from __future__ import annotations

from catalog import extensions


def _context(request, entity) -> dict:
    from .views import widget_context

    return {"fb": widget_context(request, "entity", entity.ref)}


def register() -> None:
    extensions.register_panel(
        extensions.EntityPanel(template="feedback/inc/useful_panel.html", where="overview", context=_context)
    )
