from django.apps import AppConfig


class ScaffolderConfig(AppConfig):
    name = "portal.scaffolder"
    label = "scaffolder"
