from django.apps import AppConfig


class CostsConfig(AppConfig):
    name = "portal.costs"
    label = "costs"
    verbose_name = "Costs"

    def ready(self) -> None:
        # The catalog never imports this app: it contributes a Cost tab and a header figure, and
        # recomputes the allocation when descriptors change (their ResourceId mappings).
        from catalog import signals as catalog_signals

        from . import extensions, receivers

        extensions.register()
        catalog_signals.entities_changed.connect(receivers.on_entities_changed, dispatch_uid="costs-reallocate")
