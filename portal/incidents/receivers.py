"""Where the SLO and incidents apps meet: an SLO's page-level burn opens an incident (docs/operations.md,
"Incidents"). Connected in IncidentsConfig.ready() only when portal.slo is installed; the SLO app never
imports this one."""

from __future__ import annotations

import logging

from . import services
from .models import Severity, Source

log = logging.getLogger("plinth.incidents")


def open_from_page_burn(sender, *, entity, window: str, burn_rate: float, threshold: float, **_) -> None:
    """One incident per SLO objective while it is unresolved (the dedup key): the fast window (14.4, an
    hour's burn) is SEV2, the slower page (6 over six hours) SEV3. A failure is logged, never raised into
    the evaluation that sent the signal."""
    if entity is None:
        return
    severity = Severity.SEV2 if threshold >= 14 else Severity.SEV3
    try:
        services.open_incident(
            title=f"SLO burn: {sender.title or sender.name}"[:200],
            severity=severity,
            source=Source.SLO,
            dedup_key=f"slo:{sender.pk}:{sender.objective}"[:200],
            entities=[entity],
            summary=(f"The error budget of {sender.name} ({sender.objective}) burns {burn_rate:.1f}× "
                     f"the sustainable rate over {window} (page threshold {threshold})."),
        )
    except Exception:  # an incident that cannot be opened must not fail the SLO evaluation
        log.exception("could not open an incident for SLO %s", sender.pk)


def connect() -> None:
    from django.apps import apps

    if apps.is_installed("portal.slo"):
        from portal.slo.signals import page_burn

        page_burn.connect(open_from_page_burn, dispatch_uid="incidents.open_from_page_burn")
