"""The admin site for accounts. Changes that the services audit go through the services: adding a team
(`team_create`) and changing its title or description (`team_update`; its name is fixed once made),
memberships (`membership_set` / `membership_remove`), deleting a team (`team_delete`: refused, with the
reasons on the confirmation page, while anything depends on it) and revoking a token (`token_revoke`, with
the tokens made with it). Tokens are read-only here: their users make them (the tokens page, the API, `create_token`)."""

import functools

from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse

from portal.core.client_address import client_address

from . import permissions, selectors, services
from .models import APIToken, LoginFailure, Membership, OIDCIdentity, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "source"]
    # Set here is set by hand: `membership_set` records the source (a row kept by single sign-on or the
    # org sync becomes a manual one, as the service does for `manage.py teams`).
    readonly_fields = ["source"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "created_at"]
    search_fields = ["name", "title"]
    inlines = [MembershipInline]

    def has_delete_permission(self, request, obj=None):
        return permissions.may_delete_team(request.user)

    def get_deleted_objects(self, objs, request):
        """The confirmation page (of the delete view and of the *Delete selected* action) lists why each
        team cannot be deleted yet as Django's "protected" objects, which takes its Delete button away,
        and says so in an error message."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for team in objs:
            reasons = selectors.team_delete_blockers(team)
            if reasons:
                message = f"Team '{team.name}' cannot be deleted yet: {'; '.join(reasons)}."
                self.message_user(request, message, messages.ERROR)
                protected.append(message)
        return deleted, counts, perms_needed, protected

    def delete_view(self, request, object_id, extra_context=None):
        """A refusal that `team_delete` finds after the confirmation page (something came to depend on
        the team meanwhile) is shown on the team's page, and nothing is deleted."""
        try:
            return super().delete_view(request, object_id, extra_context)
        except services.TeamInUse as exc:
            self.message_user(request, exc.messages[0], messages.ERROR)
            return redirect(reverse("admin:accounts_team_change", args=[object_id]))

    def delete_model(self, request, obj):
        services.team_delete(team=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        """All the selected teams or none (the action's transaction: `_refusal_shown`)."""
        with transaction.atomic():
            for team in queryset.order_by("name"):
                services.team_delete(team=team, actor=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_refusal_shown(func), name, description)
        return actions

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The name is read-only on a team that exists, and says why (`services.TEAM_NAME_FIXED`): a
        disabled field keeps the stored name whatever is posted."""
        form = super().get_form(request, obj, change=change, **kwargs)
        name = form.base_fields.get("name")
        if name is not None:  # a fresh field per form class (modelform_factory), safe to change
            name.help_text = services.TEAM_NAME_FIXED
            name.disabled = obj is not None
        return form

    def save_model(self, request, obj, form, change):
        """Through the services, audited with the admin as the actor: a new team through `team_create`
        (as `manage.py teams create`: the catalog's entities that already name it become its own), a
        changed title or description through `team_update`."""
        data = form.cleaned_data
        if change:
            services.team_update(team=obj, title=data["title"], description=data["description"], actor=request.user)
            return
        team = services.team_create(name=data["name"], title=data["title"], description=data["description"],
                                    actor=request.user)
        # The membership rows (save_formset) and the admin's log hold `obj`: it becomes the row just made.
        obj.pk, obj.created_at = team.pk, team.created_at
        obj._state.adding, obj._state.db = False, team._state.db

    def save_formset(self, request, form, formset, change):
        """The membership rows through the services, each change audited with the admin as the actor.
        Removals (deleted rows, and the old user of a row whose user was changed) come first, so that
        swapping two users' rows ends with both."""
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        team, actor = form.instance, request.user
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        originals = {m.pk: m for m in Membership.objects.filter(team=team).select_related("user")}
        deleted = [row for row in formset.deleted_forms if row.instance.pk in originals]
        for row in deleted:
            services.membership_remove(user=originals[row.instance.pk].user, team=team, actor=actor)
            formset.deleted_objects.append(originals[row.instance.pk])
        wanted = [row for row in formset.forms if row not in formset.deleted_forms and row.has_changed()]
        for row in wanted:
            original = originals.get(row.instance.pk)
            if original is not None and original.user_id != row.cleaned_data["user"].pk:
                services.membership_remove(user=original.user, team=team, actor=actor)
        for row in wanted:
            membership = services.membership_set(user=row.cleaned_data["user"], team=team,
                                                 role=row.cleaned_data["role"], actor=actor)
            if row.instance.pk in originals:
                formset.changed_objects.append((membership, row.changed_data))
            else:
                formset.new_objects.append(membership)
        return None


def _refusal_shown(action):
    """The *Delete selected* action, with a refusal found after its confirmation page shown as an error
    on the list (nothing deleted) rather than a server error."""

    @functools.wraps(action)
    def delete_selected(modeladmin, request, queryset):
        try:
            with transaction.atomic():  # the admin's log of the deletions goes with them
                return action(modeladmin, request, queryset)
        except services.TeamInUse as exc:
            modeladmin.message_user(request, exc.messages[0], messages.ERROR)
            return None

    return delete_selected


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    """Read-only but for the Revoke action: an edited `revoked_at` would skip the tokens made with it and
    the audit event, a deleted token would free its children from the revocation that should follow
    them, and a token added here would have no secret."""

    list_display = ["name", "user", "prefix", "parent", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_select_related = ["user", "parent"]
    search_fields = ["user__username", "name", "prefix"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return permissions.is_platform_admin(request.user)

    @admin.action(permissions=["revoke"], description="Revoke the selected tokens (and the tokens made with them)")
    def revoke(self, request, queryset):
        address, revoked = client_address(request), []
        # Oldest first: a token made with an earlier one is revoked with it, and then skipped here.
        for pk in queryset.filter(revoked_at__isnull=True).order_by("pk").values_list("pk", flat=True):
            token = selectors.token_unrevoked(pk)
            if token is not None:
                with_it = services.token_revoke(token=token, actor=request.user, address=address, by_admin=True)
                revoked.append(f"{token.name} ({token.prefix}…) of {token.user.get_username()}"
                               + (f" and {len(with_it) - 1} made with it" if len(with_it) > 1 else ""))
        if revoked:
            self.message_user(request, f"Revoked {'; '.join(revoked)}.", messages.SUCCESS)
        else:
            self.message_user(request, "Nothing to revoke: the selected tokens were revoked already.",
                              messages.WARNING)


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
