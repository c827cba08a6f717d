"""What the portal indexes. Apps register a `SearchSource` from their own `search.py` module
(imported by `SearchConfig.ready`, like admin.py), and the index asks sources for documents.

    # catalog/search.py
    from portal.search import registry

    class CatalogSource(registry.SearchSource):
        name = "catalog"
        def documents(self, keys=None): ...

    registry.register(CatalogSource())

A source yields `Document`s for all its objects (reindex) or for given keys (incremental
updates: call `portal.search.index.update(source_name, changed=[...], removed=[...])` when they
change, on commit)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    key: str  # unique across the portal; sources should prefix it with something of their own
    kind: str  # lowercased facet value, e.g. "model", "doc", "template"
    kind_label: str
    name: str
    url: str
    title: str = ""
    description: str = ""
    body: str = ""
    owner: str = ""
    lifecycle: str = ""
    type: str = ""
    tags: list[str] = field(default_factory=list)
    visibility: str = "internal"  # portal.accounts.permissions.Visibility value
    owner_team_id: int | None = None
    has_docs: bool = False  # documentation exists for it (a quality signal in ranking)


class SearchSource:
    """Base class for what an app indexes. `name` is stored on each document."""

    name: str = ""

    def documents(self, keys: Iterable[str] | None = None) -> Iterator[Document]:
        """All documents (keys=None), or those for the given keys that still exist."""
        raise NotImplementedError

    def boosted_keys(self, user: Any) -> set[str]:
        """Keys this user has a personal interest in (e.g. starred); ranked a little higher."""
        return set()

    def unindexed(self, limit: int, settled_before: Any) -> tuple[list[str], list[str]]:
        """For the repair sweep (`index.repair`): keys of objects last changed before `settled_before`
        that have no document written since that change (SearchDocument.indexed_at), and keys of this
        source's documents whose object is gone; at most `limit` of each. A source that cannot tell
        answers none."""
        return [], []


_sources: dict[str, SearchSource] = {}


def register(source: SearchSource) -> SearchSource:
    if not source.name:
        raise ValueError("A search source needs a name")
    _sources[source.name] = source
    return source


def unregister(name: str) -> None:
    _sources.pop(name, None)


def sources() -> list[SearchSource]:
    return list(_sources.values())


def get(name: str) -> SearchSource:
    return _sources[name]
