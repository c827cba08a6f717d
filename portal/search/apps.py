from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "portal.search"
    label = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        # Each app declares what it indexes in its own `search.py` (catalog/search.py, …).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("search")
