from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "portal.lineage"
    label = "lineage"
    verbose_name = "Lineage"

    def ready(self) -> None:
        from catalog import extensions
        from catalog.signals import entities_changed, model_versions_synced

        from . import selectors, services

        entities_changed.connect(services.on_entities_changed, dispatch_uid="lineage.link_declared")
        model_versions_synced.connect(services.on_model_versions_synced, dispatch_uid="lineage.run_inputs")

        # The catalog never imports this app: the run history joins the entity page from here.
        extensions.register_panel(extensions.EntityPanel(
            template="lineage/_runs_panel.html", where="overview",
            applies=lambda entity: entity.kind_key in ("pipeline", "dataset"),
            context=lambda request, entity: selectors.entity_panel(entity)))
