"""Deployment settings with their defaults. Read at call time, never at import time."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # The environments a deployment may name; anything else is refused (400) rather than invented.
    "ENVIRONMENTS": ["dev", "staging", "prod"],
    # MLflow model-version alias -> environment: a version holding the alias serves there.
    "ALIASES": {"champion": "prod", "production": "prod", "staging": "staging"},
    # Reported times: at most this far in the future (clock skew of a CD runner) or in the past.
    "MAX_FUTURE_SECONDS": 300,
    "MAX_AGE_DAYS": 366,
    # The Rego module (in the governance policy folder) deciding which environments are governed.
    "POLICY_MODULE": "deployments",
    # Events per model shown on the model page's timeline.
    "TIMELINE_EVENTS": 50,
}


def get(name: str) -> Any:
    # PLINTH_DEPLOYMENT_ALIASES, PLINTH_DEPLOYMENT_ENVIRONMENTS, ...
    return getattr(settings, f"PLINTH_DEPLOYMENT_{name}", DEFAULTS[name])
