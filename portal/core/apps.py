from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Plinth core"

    def ready(self) -> None:
        from . import heartbeat  # noqa: F401  (connects the Celery worker signals)
