from django.apps import AppConfig


class TechdocsConfig(AppConfig):
    name = "portal.techdocs"
    label = "techdocs"
