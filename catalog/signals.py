"""Signals other apps (search, docs) listen to. Sent on commit with the changed and removed refs.

`entities_changed` may also carry `snapshot`: {ref: (entity id, owner team id, ingestion.Candidate)}
for entities written by a location, so receivers need not read them back."""

import django.dispatch

entities_changed = django.dispatch.Signal()
