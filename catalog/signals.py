"""Signals other apps (search, docs) listen to. Sent on commit with the changed and removed refs."""

import django.dispatch

entities_changed = django.dispatch.Signal()
