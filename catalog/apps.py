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
        # A team that still owns entities, or that its Group entity defines, is not deleted (accounts.services).
        account_extensions.register_delete_blocker("catalog", _team_delete_blockers)

        # A team created by hand takes over the entities whose descriptors already name it.
        team_created.connect(lambda sender, team, **kw: services.refresh_owner_teams(team),
                             dispatch_uid="catalog.refresh_owner_teams", weak=False)
        # Org sync follows a change to a User or Group at once (beat runs it every 5 minutes too).
        signals.entities_changed.connect(_queue_org_sync, dispatch_uid="catalog.org_sync", weak=False)
        checks.register(_check_integrations, "catalog")


def _team_delete_blockers(team) -> list[str]:
    """Deleting the team would leave its entities without an owner (a private one then seen by platform
    admins alone), and its Group entity would make the team again at the next refresh."""
    from django.db.models import Q

    from portal.accounts.extensions import counted

    from .models import Entity

    owner_ref = f"group:default/{team.name}"
    reasons = []
    owned = Entity.objects.filter(Q(owner_team=team) | Q(owner_ref=owner_ref)).exclude(ref=owner_ref).count()
    if owned:
        reasons.append(f"it owns {counted(owned, 'catalog entity', 'catalog entities')} (give them another owner "
                       "in their descriptors, or unregister them)")
    if Entity.objects.filter(ref=owner_ref).exists():
        reasons.append(f"the catalog's Group entity {owner_ref} defines it, and its next refresh would make the "
                       "team again (remove the Group descriptor, or unregister its location)")
    return reasons


OWNS_SHOWN = 50


def _team_owns(request, team) -> dict:
    """The first OWNS_SHOWN entities the reader may see; past that, how many there are and the catalog
    list of them all (its `owner` filter, every kind). One row more is read to know whether to count:
    a count query only for a team that owns more."""
    from urllib.parse import urlencode

    from django.urls import reverse

    from . import selectors

    owned = selectors.owned_by_team(team, request.user)
    shown = list(owned[:OWNS_SHOWN + 1])
    if len(shown) <= OWNS_SHOWN:
        return {"owned": shown, "total": len(shown)}
    query = urlencode({"owner": f"group:default/{team.name}", "kind": "all"})
    return {"owned": shown[:OWNS_SHOWN], "total": owned.count(), "all_url": f"{reverse('catalog:list')}?{query}"}


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
