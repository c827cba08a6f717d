from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Software catalog"

    def ready(self) -> None:
        from portal.accounts.signals import team_created

        from . import services

        # A team created by hand takes over the entities whose descriptors already name it.
        team_created.connect(lambda sender, team, **kw: services.refresh_owner_teams(team),
                             dispatch_uid="catalog.refresh_owner_teams", weak=False)
