"""Extension point of the team page (/teams/<name>/): apps built on accounts add sections in their
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
