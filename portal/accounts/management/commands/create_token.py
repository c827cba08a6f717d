"""`manage.py create_token USERNAME` — print a new API token (the only time it is shown)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.accounts import services
from portal.accounts.api import TOKEN_EXPIRY_DAYS

# The longest expiry the API and the tokens page offer: a longer one is refused, not an OverflowError.
MAX_EXPIRES_IN_DAYS = max(TOKEN_EXPIRY_DAYS)


class Command(BaseCommand):
    help = "Create an API token for a user and print it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="What the token is for")
        parser.add_argument("--expires-in-days", type=int, default=None,
                            help=f"Days until it expires, 1 to {MAX_EXPIRES_IN_DAYS} (default: never)")

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user '{username}'")
        if not user.is_active:
            raise CommandError(f"User '{username}' is inactive")
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRES_IN_DAYS:
            raise CommandError(f"--expires-in-days must be from 1 to {MAX_EXPIRES_IN_DAYS} "
                               f"(as the API allows), not {expires_in_days}")
        try:
            _, raw = services.token_create(user=user, name=name, expires_in_days=expires_in_days)
        except ValidationError as exc:  # the name: blank, or over 100 characters
            raise CommandError(f"--name: {' '.join(exc.message_dict.get('name', exc.messages))}") from exc
        self.stdout.write(raw)
