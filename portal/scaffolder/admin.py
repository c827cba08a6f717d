from django.contrib import admin

from . import downloads
from .models import PublishedRepository, Run, RunLog, RunStep


class RunStepInline(admin.TabularInline):
    model = RunStep
    extra = 0
    can_delete = False
    readonly_fields = ["index", "step_id", "name", "action", "status", "message", "started_at", "finished_at"]
    exclude = ["output"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["uid", "template_ref", "status", "dry_run", "created_by", "created_at", "attempts"]
    list_filter = ["status", "dry_run"]
    search_fields = ["uid", "template_ref"]
    readonly_fields = [f.name for f in Run._meta.fields]
    inlines = [RunStepInline]

    def has_add_permission(self, request):
        return False


@admin.register(RunLog)
class RunLogAdmin(admin.ModelAdmin):
    list_display = ["run", "step_id", "level", "message", "created_at"]
    readonly_fields = ["run", "step_id", "level", "message", "created_at"]


@admin.register(PublishedRepository)
class PublishedRepositoryAdmin(admin.ModelAdmin):
    """Deleting a repository here frees its name and deletes its bundle from the storage."""

    list_display = ["owner", "name", "branch", "commit", "run_uid", "created_at"]
    search_fields = ["owner", "name", "run_uid"]
    readonly_fields = [f.name for f in PublishedRepository._meta.fields]

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        downloads.delete_bundle(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for repository in queryset:
            downloads.delete_bundle(repository)
        super().delete_queryset(request, queryset)
