import logging

from django.apps import AppConfig
from django.core import checks


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Software catalog"

    def ready(self) -> None:
        from portal.accounts import extensions as account_extensions
        from portal.accounts.signals import team_created

        from . import services, signals

        # What a team owns, beside its members on the team page (accounts never imports the catalog).
        account_extensions.register_section(account_extensions.TeamSection(
            key="owns", template="catalog/inc/team_owns.html", context=_team_owns, beside=True))

        # A team created by hand takes over the entities whose descriptors already name it.
        team_created.connect(lambda sender, team, **kw: services.refresh_owner_teams(team),
                             dispatch_uid="catalog.refresh_owner_teams", weak=False)
        # Org sync follows a change to a User or Group at once (beat runs it every 5 minutes too).
        signals.entities_changed.connect(_queue_org_sync, dispatch_uid="catalog.org_sync", weak=False)
        checks.register(_check_integrations, "catalog")


def _team_owns(request, team) -> dict:
    from . import selectors

    return {"owned": selectors.owned_by_team(team, request.user)[:50]}


def _check_integrations(app_configs=None, **kwargs) -> list:
    """A malformed PLINTH_INTEGRATIONS fails `manage.py check` and start-up, not the first registration."""
    from django.core.exceptions import ImproperlyConfigured

    from . import integrations

    try:
        integrations.configured()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="docs/catalog.md#code-host-integrations", id="catalog.E001")]
    return []


def _queue_org_sync(sender, changed=(), removed=(), orphaned=(), **kwargs) -> None:
    from . import org_sync, tasks

    if not org_sync.enabled():
        return
    # An orphaned User or Group grants nothing any more (org_sync.wanted_memberships): that is a change too.
    if any(ref.startswith(("user:", "group:")) for ref in (*changed, *removed, *orphaned)):
        try:
            tasks.sync_org.delay()
        except Exception:  # the broker is down: the catalog change stands, beat's run catches up
            logging.getLogger("plinth.catalog").exception("could not queue the org sync")
