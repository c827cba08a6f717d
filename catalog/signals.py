"""Signals other apps (search, docs) listen to.

`entities_changed` is sent on commit with the changed refs and the removed ones (gone from the
catalog). It may also carry `snapshot`: {ref: (entity id, owner team id, ingest.reader.Candidate)} for
entities written by a location, so receivers need not read them back; `staged=True` when every changed
entity was sent to `entities_staged` before the commit; and `orphaned`: the refs a refresh took out of
their location but kept in the catalog, flagged (`PLINTH_CATALOG_ORPHAN_STRATEGY=keep`). Orphans are
not in `removed`, nor in `changed` unless their descriptor changed too: a receiver that shows the
orphan flag or the location reads them from `orphaned`.

`entities_staged` is sent inside a location's write transaction, after each batch of entities it
wrote (a streamed registration sends one per batch): `written` is [(entity id, owner team id,
ingest.reader.Candidate)], and `state` a dict that lasts as long as the write, for receivers that keep
something from batch to batch (`state["bulk_load"]` is true when the catalog deferred its own
indexes for a large load; receivers may do the same with theirs). A last call with `done=True` and
nothing written ends the batches: receivers finish up before the write goes on to read. What a
receiver writes commits, or rolls back, with the catalog change; an exception fails the whole write
(the search index is written this way, so that a registered entity is findable as soon as it is
visible)."""

import django.dispatch

entities_changed = django.dispatch.Signal()
entities_staged = django.dispatch.Signal()

# Sent inside the MLflow sync's write transaction with `entity_ids`: the models whose versions (and
# aliases) were just stored. A receiver's writes commit or roll back with the sync (deployments derive
# where versions serve from aliases this way, without the catalog importing them).
model_versions_synced = django.dispatch.Signal()
