from django.contrib import admin

from .models import FeedbackItem, Vote


@admin.register(FeedbackItem)
class FeedbackItemAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "target_label", "owner_team", "author", "useful", "status", "created_at")
    list_filter = ("kind", "status", "useful")
    search_fields = ("target_label", "title", "comment")
    raw_id_fields = ("entity", "run", "author", "answered_by")
    readonly_fields = ("created_at", "updated_at", "version")


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("item", "user", "created_at")
    raw_id_fields = ("item", "user")
