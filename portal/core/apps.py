from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Plinth core"

    def ready(self) -> None:
        from . import audit, heartbeat  # noqa: F401  (heartbeat connects the Celery worker signals)

        audit.install_sqlite_guard()
