from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "portal.deployments"
    label = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        # The catalog and governance never import this app: it connects to their extension points.
        from catalog import signals as catalog_signals
        from portal.governance import signals as governance_signals

        from . import extensions, receivers

        extensions.register()
        catalog_signals.model_versions_synced.connect(receivers.on_model_versions_synced,
                                                      dispatch_uid="deployments-from-aliases")
        catalog_signals.entities_changed.connect(receivers.on_entities_changed,
                                                 dispatch_uid="deployments-follow-removed-models")
        governance_signals.request_executed.connect(receivers.on_request_executed,
                                                    dispatch_uid="deployments-drift-on-approval")
