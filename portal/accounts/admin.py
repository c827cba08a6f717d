from django.contrib import admin

from .models import APIToken, LoginFailure, Membership, OIDCIdentity, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "created_at"]
    search_fields = ["name", "title"]
    inlines = [MembershipInline]


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
    search_fields = ["user__username", "name", "prefix"]


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ["username", "remote_addr", "created_at"]
    search_fields = ["username"]


@admin.register(OIDCIdentity)
class OIDCIdentityAdmin(admin.ModelAdmin):
    """Deleting a row unlinks a single sign-on account (its next sign-in links again, or is refused if
    the user now has a password); linking by hand: add a row with the provider's issuer and subject."""

    list_display = ["user", "issuer", "subject", "created_at", "last_sign_in_at"]
    readonly_fields = ["created_at", "last_sign_in_at"]
    search_fields = ["user__username", "subject"]
    autocomplete_fields = ["user"]
