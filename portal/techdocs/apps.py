from django.apps import AppConfig


class TechdocsConfig(AppConfig):
    name = "portal.techdocs"
    label = "techdocs"
    verbose_name = "Docs"

    def ready(self) -> None:
        from catalog.signals import entities_changed

        from . import receivers, search, tabs  # noqa: F401 (search registers the docs search source)

        entities_changed.connect(receivers.on_entities_changed, dispatch_uid="techdocs-build-on-change")
        tabs.register()
