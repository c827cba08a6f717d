"""Search analytics writes: each query as run, and the result the user clicked."""

from __future__ import annotations

from django.db import transaction

from portal.core import usage
from portal.core.usage import Client, EventType

from .models import SearchQuery
from .query import normalize

# The search analytics page keeps reading SearchQuery (per query text, with latency); the same facts go
# to the portal-wide usage analytics as events, so searches count in the funnel and the rollups.
_CLIENT_OF_VIA = {SearchQuery.Via.API: Client.API}


def _event_client(via: str) -> str:
    return _CLIENT_OF_VIA.get(via, Client.BROWSER)


def query_record(
    *,
    user,
    text: str,
    via: str,
    result_count: int,
    latency_ms: float,
    clicked_key: str = "",
    clicked_position: int | None = None,
) -> SearchQuery | None:
    """Store one query. Empty queries (a bare /search visit) are not analytics."""
    text = (text or "").strip()
    if not text:
        return None
    normalized = normalize(text)
    usage.record(EventType.SEARCH, user=user, subject=normalized[:300], value=result_count,
                   client=_event_client(via), data={"via": via})
    if clicked_key:
        usage.record(EventType.SEARCH_CLICK, user=user, subject=normalized[:300], value=clicked_position,
                       client=_event_client(via), data={"via": via, "key": clicked_key[:250]})
    return SearchQuery.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        text=text[:500],
        normalized=normalized,
        via=via,
        result_count=result_count,
        latency_ms=latency_ms,
        clicked_key=clicked_key[:250],
        clicked_position=clicked_position,
    )


@transaction.atomic
def query_click(*, user, query_id: int | None, text: str, key: str, position: int | None, via: str) -> None:
    """Remember the clicked result on the user's own query row, or as a new row (typeahead)."""
    row = None
    if query_id:
        row = SearchQuery.objects.select_for_update().filter(pk=query_id, user=user).first()
    if row is None:
        query_record(
            user=user,
            text=text,
            via=via,
            result_count=1,
            latency_ms=0,
            clicked_key=key,
            clicked_position=position,
        )
        return
    if not row.clicked_key:  # the first click is the one that answers the query
        usage.record(EventType.SEARCH_CLICK, user=user, subject=row.normalized[:300], value=position,
                       client=_event_client(via), data={"via": via, "key": key[:250]})
        row.clicked_key, row.clicked_position = key[:250], position
        row.save(update_fields=["clicked_key", "clicked_position"])
