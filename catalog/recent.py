"""Recently viewed entities, kept in the user's session (no table: it is a convenience, per browser).

The entity page calls `remember()`; the home page reads `recently_viewed()` in one query, filtered by the
permission module, so an entity that became private or was removed simply drops out of the list.
"""

from __future__ import annotations

from django.db.models import QuerySet

from . import selectors
from .models import Entity

SESSION_KEY = "plinth.recently_viewed"
KEEP = 8


def remember(request, entity: Entity) -> None:
    """Put the entity first; the session is written only when the list actually changes."""
    seen = [pk for pk in request.session.get(SESSION_KEY, []) if isinstance(pk, int)]
    if seen[:1] == [entity.pk]:
        return
    request.session[SESSION_KEY] = [entity.pk, *(pk for pk in seen if pk != entity.pk)][:KEEP]


def recently_viewed(request) -> list[Entity]:
    """The visible ones of the remembered entities, most recent first (one query)."""
    seen = [pk for pk in request.session.get(SESSION_KEY, []) if isinstance(pk, int)][:KEEP]
    if not seen:
        return []
    rows: QuerySet[Entity] = selectors.visible_entities(request.user).filter(pk__in=seen)
    by_pk = {e.pk: e for e in rows}
    return [by_pk[pk] for pk in seen if pk in by_pk]
