from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "portal.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401 (registers the canvas check)
        from .receivers import signed_in

        user_logged_in.connect(signed_in, dispatch_uid="insights-sign-in")
