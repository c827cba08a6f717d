"""The body rule of test_api_body_rule.py on PostgreSQL (the production profile, `make test`'s prod_smoke
pass), where a NUL reaching text or jsonb was the 500: the same real endpoints, each a 400 naming the
field's path, nothing written."""

import pytest

from tests.core import test_api_body_rule as rule
from tests.core.test_api_body_rule import api  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


@pytest.mark.parametrize("escape", sorted(rule.ESCAPES))
@pytest.mark.parametrize("case", [c for c in rule.CASES if rule.CASES[c][2]])
def test_a_nul_or_lone_surrogate_anywhere_is_a_400_on_postgresql(api, case, escape):  # noqa: F811
    rule.test_a_nul_or_lone_surrogate_anywhere_is_a_400_naming_the_path(api, case, escape)


@pytest.mark.parametrize("escape", sorted(rule.ESCAPES))
def test_a_key_holding_one_is_a_400_on_postgresql(api, escape):  # noqa: F811
    rule.test_a_key_holding_one_is_named_escaped(api, escape)


def test_the_bodies_are_taken_without_the_escape_on_postgresql(api):  # noqa: F811
    rule.test_the_bodies_are_taken_without_the_escape(api)
