"""Read-only admin views. Decisions are made through the services only (separation of duties, audit),
so nothing governance-related can be added, changed or deleted here — not even by a superuser."""

from django.contrib import admin

from .models import ApprovalRequest, Decision, OutboxMessage, PolicyResult


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "action", "target_ref", "requester", "state", "created_at")
    list_filter = ("state", "action")
    search_fields = ("target_ref",)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("request", "user", "decision", "created_at")


@admin.register(PolicyResult)
class PolicyResultAdmin(ReadOnlyAdmin):
    list_display = ("request", "gate", "passed", "enforcement", "policy_hash")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("key", "task", "created_at", "sent_at", "attempts", "last_error")
