"""Extension points of the entity page: other apps register tabs and panels in their AppConfig.ready().

A registered tab with the same key as a built-in one replaces it (e.g. techdocs renders `definition`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EntityTab:
    key: str
    label: str
    template: str  # rendered inside the entity page when the tab is selected
    applies: Callable[[Any], bool]  # entity -> bool
    # (request, entity) -> extra context; a "tab_status" key sets the page's status (400 for a bad parameter)
    context: Callable[[Any, Any], dict] | None = None
    order: int = 50


@dataclass(frozen=True)
class EntityPanel:
    template: str  # included on the Overview tab ("overview") or in the page header ("actions")
    where: str = "overview"
    applies: Callable[[Any], bool] = lambda entity: True
    context: Callable[[Any, Any], dict] | None = None


TABS: dict[str, EntityTab] = {}
PANELS: list[EntityPanel] = []


def register_tab(tab: EntityTab) -> None:
    TABS[tab.key] = tab


def register_panel(panel: EntityPanel) -> None:
    if panel not in PANELS:
        PANELS.append(panel)


def tabs_for(entity) -> list[EntityTab]:
    return sorted((t for t in TABS.values() if t.applies(entity)), key=lambda t: (t.order, t.key))


def panels_for(request, entity, where: str) -> list[dict]:
    out = []
    for panel in PANELS:
        if panel.where == where and panel.applies(entity):
            out.append({"template": panel.template, "context": panel.context(request, entity) if panel.context else {}})
    return out
