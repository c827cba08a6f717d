from django.contrib import admin

from .models import SearchQuery


@admin.register(SearchQuery)
class SearchQueryAdmin(admin.ModelAdmin):
    """The raw query log, read-only (the summary is at /search/insights/)."""

    list_display = ("created_at", "user", "text", "via", "result_count", "latency_ms", "clicked_key")
    list_filter = ("via",)
    search_fields = ("normalized", "clicked_key")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
