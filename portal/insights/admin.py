"""The capture pipeline's counters (dropped events) and opt-outs, read-only for platform admins."""

from django.contrib import admin

from .models import AnalyticsOptOut, CaptureCounter


@admin.register(CaptureCounter)
class CaptureCounterAdmin(admin.ModelAdmin):
    list_display = ("name", "value", "updated_at")
    readonly_fields = ("name", "value", "updated_at")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AnalyticsOptOut)
class AnalyticsOptOutAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at")
    readonly_fields = ("user", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
