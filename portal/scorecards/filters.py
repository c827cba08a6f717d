"""The filters of a scorecard's entity list, the drill-down behind each count of its rollups: a level,
a team and a domain, read from the query string and checked against the scorecard, so a bad value is
a 400 or 404 naming the parameter, never a 500 or a silently empty list.

Each filter is absent (any), empty (none: no level reached, the unowned entities, the entities in no
domain — as `Result.level` and `DailyRollup.domain_ref` store "none", and as the campaign page's
`?team=` names the unowned) or a value: a level of the scorecard, a team's name, a domain reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog import selectors as catalog_selectors
from portal.accounts.models import Team

from .definitions import Scorecard

FIELDS = ("level", "team", "domain")


class FilterError(Exception):
    """A filter the list cannot apply: `status` 400 (malformed, not one of the scorecard's levels) or
    404 (no such team)."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


@dataclass(frozen=True)
class EntityFilter:
    level: str | None = None  # None: any; "": no level reached
    team: Team | None = None
    unowned: bool = False  # the entities of no team
    domain: str | None = None  # None: any; "": in no domain; else a ref, `domain:default/payments`

    @property
    def active(self) -> bool:
        return self.level is not None or self.team is not None or self.unowned or self.domain is not None


def _one(params, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise FilterError(name, f"Give one {name} (got {len(values)}).")
    return values[0] if values else None


def _level(card: Scorecard, raw: str) -> str:
    if raw == "" or raw in card.levels:
        return raw
    same = [name for name in card.levels if name.lower() == raw.lower()]
    if len(same) == 1:
        return same[0]
    if raw.lower() == "none":  # the API's spelling of "no level"
        return ""
    shown = ", ".join(card.levels)
    raise FilterError("level", f"{raw[:40]!r} is not a level of {card.title} ({shown}); leave it empty for "
                      "the entities that reach no level.")


def _team(raw: str) -> Team:
    team = Team.objects.filter(name=raw.lower()[:64]).first()
    if team is None:
        raise FilterError("team", f"No team {raw[:63]!r}.", status=404)
    return team


def _domain(raw: str) -> str:
    ref = catalog_selectors.domain_ref(raw[:255])
    if not ref.startswith("domain:"):
        raise FilterError("domain", f"{raw[:80]!r} is not a domain reference: give domain:<namespace>/<name> "
                          "(or the name, in the default namespace); leave it empty for the entities in no domain.")
    return ref


def parse(card: Scorecard, params) -> EntityFilter:
    """The filters in `params` (a QueryDict). Raises FilterError. One query when a team is named."""
    level, team, domain = (_one(params, name) for name in FIELDS)
    return EntityFilter(
        level=None if level is None else _level(card, level),
        team=_team(team) if team else None, unowned=team == "",
        domain=None if domain is None else (_domain(domain) if domain else ""),
    )
