from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "portal.lineage"
    label = "lineage"
    verbose_name = "Lineage"

    def ready(self) -> None:
        from catalog import extensions
        from catalog.signals import entities_changed, model_versions_synced

        from . import graph_sync, impact, selectors, services, views

        entities_changed.connect(services.on_entities_changed, dispatch_uid="lineage.link_declared")
        # Run inputs are linked to Dataset entities before the graph edges read them.
        model_versions_synced.connect(services.on_model_versions_synced, dispatch_uid="lineage.run_inputs")
        # After the link above (receivers run in connection order): edges resolve entities to their nodes.
        entities_changed.connect(graph_sync.on_entities_changed, dispatch_uid="lineage.graph_edges")
        model_versions_synced.connect(graph_sync.on_model_versions_synced, dispatch_uid="lineage.graph_mlflow")

        # The catalog never imports this app: the run history joins the entity page from here.
        extensions.register_panel(extensions.EntityPanel(
            template="lineage/_runs_panel.html", where="overview",
            applies=lambda entity: entity.kind_key in ("pipeline", "dataset"),
            context=lambda request, entity: selectors.entity_panel(entity, request.user)))

        # Every entity has a Lineage tab (it replaces the catalog's own "lineage" lists of models and
        # pipelines: the graph shows the same declared relations, and what really ran).
        extensions.register_tab(extensions.EntityTab(
            key="lineage", label="Lineage", template="lineage/_tab.html", applies=lambda entity: True,
            context=views.entity_tab_context, order=40))
        # "What depends on this?": the Impact tab, and the list governance snapshots on requests.
        impact.register()
