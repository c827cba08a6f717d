from django.contrib import admin

from .models import Entity, Location, ProcessingError


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["target", "type", "status", "entity_count", "error_count", "refreshed_at"]
    search_fields = ["target"]


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    # Entities are written by ingestion only (one place per rule): the admin reads.
    list_display = ["ref", "kind", "owner_ref", "lifecycle", "visibility", "orphan", "updated_at"]
    list_filter = ["kind", "visibility", "orphan"]
    search_fields = ["ref", "title"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ProcessingError)
class ProcessingErrorAdmin(admin.ModelAdmin):
    list_display = ["source", "line", "field", "message", "created_at"]
