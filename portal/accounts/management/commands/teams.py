"""`manage.py teams create|add|remove|list` — team administration for automation."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.accounts import selectors, services
from portal.accounts.models import Role, Team


class Command(BaseCommand):
    help = "Create teams and manage their members."

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
