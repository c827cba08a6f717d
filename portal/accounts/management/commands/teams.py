"""`manage.py teams create|add|remove|list|delete` — team administration for automation."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.accounts import permissions, selectors, services
from portal.accounts.models import Role, Team


class Command(BaseCommand):
    help = "Create and delete teams and manage their members."
    stealth_options = ("stdin",)  # where `delete` reads its confirmation (tests pass a stream)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="Create a team")
        create.add_argument("name")
        create.add_argument("--title", default="")
        add = sub.add_parser("add", help="Add a user to a team (or change their role)")
        add.add_argument("username")
        add.add_argument("team")
        add.add_argument("--role", default=Role.MEMBER, help=f"One of: {', '.join(Role.values)}")
        remove = sub.add_parser("remove", help="Remove a user from a team")
        remove.add_argument("username")
        remove.add_argument("team")
        sub.add_parser("list", help="List teams and their members")
        delete = sub.add_parser("delete", help="Delete a team nothing depends on any more (platform admins)")
        delete.add_argument("team")
        delete.add_argument("--actor", required=True,
                            help="Username of the platform admin (active superuser) deleting it, for the audit")
        delete.add_argument("--yes", action="store_true",
                            help="Do not ask for confirmation (needed when stdin is not a terminal)")

    def handle(self, *args, verb: str, **options):
        try:
            getattr(self, f"_{verb}")(**options)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc

    def _create(self, name: str, title: str, **_):
        if len(title) > 200:
            raise CommandError("--title is too long (at most 200 characters)")
        team = services.team_create(name=name, title=title)
        self.stdout.write(self.style.SUCCESS(f"Created team {team.name}"))

    def _add(self, username: str, team: str, role: str, **_):
        user, team_obj = self._user(username), self._team(team)
        if role not in Role.values:
            raise CommandError(f"Unknown role '{role}'. Roles: {', '.join(Role.values)}")
        services.membership_set(user=user, team=team_obj, role=role)
        self.stdout.write(self.style.SUCCESS(f"{username} is {role} of {team}"))

    def _remove(self, username: str, team: str, **_):
        if not services.membership_remove(user=self._user(username), team=self._team(team)):
            raise CommandError(f"{username} is not a member of {team}: nothing removed")
        self.stdout.write(self.style.SUCCESS(f"{username} removed from {team}"))

    def _list(self, **_):
        for team in selectors.team_list():
            self.stdout.write(f"{team.name}\t{team.title}")
            for m in selectors.team_members(team):
                self.stdout.write(f"  {m.user.username}\t{m.role}")

    def _delete(self, team: str, actor: str, yes: bool, stdin=None, **_):
        """Through `services.team_delete`, as the admin site: refused (each reason on its line, nothing
        changed) while anything depends on the team, which the service checks again under a row lock
        after the confirmation; one `team.delete` event, attributed to `--actor`."""
        admin = self._user(actor)
        if not permissions.may_delete_team(admin):
            raise CommandError(f"--actor '{actor}' is not a platform admin (an active superuser): "
                               "only platform admins delete teams; nothing was deleted")
        team_obj = self._team(team)
        self._refuse(team_obj.name, selectors.team_delete_blockers(team_obj))
        if not yes:
            self._confirm(team_obj, stdin if stdin is not None else sys.stdin)
        try:
            done = services.team_delete(team=team_obj, actor=admin)
        except services.TeamInUse as exc:  # something came to depend on it since the check above
            self._refuse(team_obj.name, exc.reasons or exc.messages)
        except PermissionDenied as exc:
            raise CommandError(f"{exc} Nothing was deleted.") from exc
        except ValidationError as exc:  # deleted meanwhile by someone else
            raise CommandError(" ".join(exc.messages)) from exc
        members = [f"{m['user']} {m['role']}" for m in done["before"]["members"]]
        lines = [f"Deleted team {team_obj.name} (audited as team.delete by {actor})",
                 f"  members removed: {len(members)}" + (f" ({', '.join(members)})" if members else "")]
        for outcome, counts in (done["after"] or {}).items():
            lines.append(f"  {outcome}: {', '.join(f'{model} {n}' for model, n in counts.items())}")
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))

    @staticmethod
    def _refuse(name: str, reasons: list[str]) -> None:
        if reasons:
            raise CommandError(f"Team '{name}' cannot be deleted yet; nothing was deleted:\n"
                               + "\n".join(f"  - {reason}" for reason in reasons))

    def _confirm(self, team: Team, stdin) -> None:
        """Ask on a terminal; anywhere else (a script, a pipe) refuse rather than guess: `--yes` says so."""
        if not stdin.isatty():
            raise CommandError(f"Deleting team '{team.name}' needs confirmation: stdin is not a terminal, "
                               "so pass --yes; nothing was deleted")
        self.stdout.write(f"Delete team '{team.name}' and its {team.memberships.count()} memberships? "
                          "This cannot be undone. Type the team's name to confirm: ", ending="")
        self.stdout.flush()
        if stdin.readline().strip() != team.name:
            raise CommandError(f"Not confirmed: team '{team.name}' was not deleted")

    @staticmethod
    def _user(username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user '{username}'")
        return user

    @staticmethod
    def _team(name: str) -> Team:
        team = Team.objects.filter(name=name).first()
        if team is None:
            raise CommandError(f"Unknown team '{name}'")
        return team
