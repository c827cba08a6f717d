"""`manage.py create_token USERNAME` — print a new API token (the only time it is shown)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.accounts import services


class Command(BaseCommand):
    help = "Create an API token for a user and print it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="What the token is for")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user '{username}'")
        if not user.is_active:
            raise CommandError(f"User '{username}' is inactive")
        if expires_in_days is not None and expires_in_days <= 0:
            raise CommandError("--expires-in-days must be positive")
        _, raw = services.token_create(user=user, name=name, expires_in_days=expires_in_days)
        self.stdout.write(raw)
