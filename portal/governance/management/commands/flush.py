"""`manage.py flush`, allowed to empty the append-only audit table (SQLite guard, see portal.core.audit).

Django's flush wipes every table, which is also how the test suite resets the database between
transactional tests; the audit triggers refuse row deletes everywhere else."""

from django.core.management.commands.flush import Command as DjangoFlush

from portal.core import audit


class Command(DjangoFlush):
    def handle(self, **options):
        with audit.maintenance():
            return super().handle(**options)
