"""The demo catalog: the descriptors in this folder and the locations the demo registers (the portal's
own docs, the SDK, the built-in software templates). Loaded by `manage.py demo load` (make run), the
benchmarks and the tests, after the people (`portal/accounts/demo.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CATALOG_DIR = Path(__file__).resolve().parent
ROOT = CATALOG_DIR.parents[1]
# Locations the demo registers, in order. Apps ship their own descriptors (the portal's own docs entity,
# the built-in software templates); a location whose file does not exist yet is skipped.
DEMO_LOCATIONS = [
    CATALOG_DIR / "catalog-info.yaml",
    ROOT / "docs" / "catalog-info.yaml",
    ROOT / "sdk" / "catalog-info.yaml",
    ROOT / "portal" / "scaffolder" / "builtin" / "catalog-info.yaml",
]


@dataclass
class DemoCatalog:
    """What registering the demo locations did, summed over their plans."""

    plans: list

    def _summed(self, name: str) -> list:
        return [item for plan in self.plans for item in getattr(plan, name)]

    added = property(lambda self: self._summed("added"))
    changed = property(lambda self: self._summed("changed"))
    unchanged = property(lambda self: self._summed("unchanged"))
    errors = property(lambda self: self._summed("errors"))


def load_catalog(actor=None) -> DemoCatalog:
    """Register the demo locations (again: unchanged files are skipped)."""
    from catalog import services  # at call time: the app registry is ready by then

    return DemoCatalog([services.location_register(target=str(path), actor=actor, file_roots=None)
                        for path in DEMO_LOCATIONS if path.exists()])
