"""Signals of the SLO app.

`page_burn` is sent (after the evaluation commits) when a page-level multi-window condition starts to
hold for an SLO — not again while it keeps holding. sender: the SLO row; keywords: entity (the catalog
Entity), window ("1h/5m" or "6h/30m": long/short), burn_rate (over the long window), threshold (14.4
or 6). The incidents app opens an incident from it (connected where the apps meet, not here)."""

import django.dispatch

page_burn = django.dispatch.Signal()
