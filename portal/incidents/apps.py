from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "portal.incidents"
    label = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        # The catalog and insights never import this app: it adds a tab and a badge to entity pages and
        # registers its MTTA/MTTR queries with the capability canvas's KPI registry.
        from . import extensions, kpis, receivers  # noqa: F401 (kpis registers on import)

        extensions.register()
        receivers.connect()  # an SLO's page-level burn opens an incident
