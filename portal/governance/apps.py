from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "portal.governance"
    label = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from . import extensions

        extensions.register()
