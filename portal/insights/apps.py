from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "portal.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from portal.core.usage import usage_event

        from . import checks  # noqa: F401 (registers the canvas check)
        from .receivers import signed_in, usage_happened

        user_logged_in.connect(signed_in, dispatch_uid="insights-sign-in")
        usage_event.connect(usage_happened, dispatch_uid="insights-usage")
