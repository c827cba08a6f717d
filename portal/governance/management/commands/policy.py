"""`manage.py policy test`: run the Rego unit tests (`policies/*_test.rego`; every `test_*` rule must be true).
`manage.py policy check`: compile every gate and rule module and report errors (what a request would fail
closed on)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal.governance import policy


class Command(BaseCommand):
    help = "Test or check the Rego policies."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["test", "check"])

    def handle(self, *args, **options):
        if options["verb"] == "check":
            policies = policy.current()
            broken = {n: s.error for n, s in policies.sources.items() if s.error}
            for name in policies.sources:
                self.stdout.write(
                    f"{'FAIL' if name in broken else 'ok  '} {name}.rego {broken.get(name, '')}"
                )
            for name, error in policy.rule_modules().items():  # rules other apps ask (not gates)
                self.stdout.write(f"{'FAIL' if error else 'ok  '} {name}.rego (rule module) {error}")
                if error:
                    broken[name] = error
            if broken:
                raise CommandError(f"{len(broken)} polic{'y' if len(broken) == 1 else 'ies'} do not compile")
            return
        outcomes = policy.run_tests()
        failed = [o for o in outcomes if not o.passed]
        for o in outcomes:
            self.stdout.write(
                f"{'PASS' if o.passed else 'FAIL'} {o.file}::{o.name}{' — ' + o.message if o.message else ''}"
            )
        self.stdout.write(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
        if failed or not outcomes:
            raise CommandError("policy tests failed" if failed else "no policy tests found")
