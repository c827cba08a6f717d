from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "portal.feedback"
    label = "feedback"
    verbose_name = "Feedback and roadmap"

    def ready(self) -> None:
        from . import extensions

        extensions.register()
