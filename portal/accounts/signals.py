"""Signals of the accounts app, for apps built on top of it (accounts imports none of them)."""

from django.dispatch import Signal

# A team was created (sent inside the creating transaction). Receivers: `team`.
team_created = Signal()
