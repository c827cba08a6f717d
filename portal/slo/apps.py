from django.apps import AppConfig


class SloConfig(AppConfig):
    name = "portal.slo"
    label = "slo"
    verbose_name = "SLOs"

    def ready(self) -> None:
        # The catalog never imports this app: it contributes a tab and a badge, and listens for changes.
        from catalog import signals as catalog_signals

        from . import extensions, receivers

        extensions.register()
        catalog_signals.entities_changed.connect(receivers.on_entities_changed, dispatch_uid="slo-sync-changed")
