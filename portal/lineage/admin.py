from django.contrib import admin

from .models import Node, Run


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("type", "namespace", "name", "entity")
    list_filter = ("type",)
    search_fields = ("namespace", "name")
    raw_id_fields = ("entity", "last_run")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("run_id", "job", "state", "started_at", "ended_at")
    list_filter = ("state",)
    raw_id_fields = ("job",)
