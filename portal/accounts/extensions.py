"""Extension points of teams: sections of the team page (/teams/<name>/), and the checks that keep a
team from being deleted while an app still depends on it. Apps built on accounts register both in their
AppConfig.ready(), so accounts never imports them (the catalog's entity tabs and panels work the same way)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TeamSection:
    key: str
    template: str  # included below the members, or beside them (`beside`: what the team owns)
    context: Callable[[Any, Any], dict]  # (request, team) -> the section's context, as `section`
    beside: bool = False


SECTIONS: dict[str, TeamSection] = {}


def register_section(section: TeamSection) -> None:
    SECTIONS[section.key] = section


def sections_for(request, team) -> list[dict]:
    return [{"template": s.template, "section": s.context(request, team), "beside": s.beside}
            for s in SECTIONS.values()]


# A team deletion blocker: (team) -> why the team may not be deleted yet, each reason naming how many and
# what to do first; [] when that app has nothing (accounts.services.team_delete, selectors.team_delete_blockers).
DELETE_BLOCKERS: dict[str, Callable[[Any], list[str]]] = {}


def register_delete_blocker(key: str, check: Callable[[Any], list[str]]) -> None:
    DELETE_BLOCKERS[key] = check


def delete_blockers(team) -> list[str]:
    return [reason for check in DELETE_BLOCKERS.values() for reason in check(team)]


def counted(n: int, one: str, many: str) -> str:
    """`1 catalog entity`, `3 catalog entities`: a blocker's count in words."""
    return f"{n} {one if n == 1 else many}"
