"""The sign-in throttle and the token first-use claim under parallel requests on PostgreSQL (run by
`make test`'s production-profile pass): advisory locks and a conditional UPDATE, not SQLite's single writer."""


import pytest

from tests.accounts import test_sign_in_limits as sign_in
from tests.accounts import test_token_events as token_events

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only")]


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_on_postgresql(settings):
    settings.PLINTH_LOGIN_MAX_FAILURES = 3
    settings.PLINTH_LOGIN_MAX_FAILURES_PER_ADDRESS = 5
    settings.PLINTH_LOGIN_WINDOW_SECONDS = 600
    sign_in.test_parallel_guesses_are_counted_before_any_finishes(settings)


@pytest.mark.django_db(transaction=True)
def test_token_first_use_race_on_postgresql():
    token_events.test_first_use_is_recorded_once_when_connections_race()


@pytest.mark.django_db
def test_control_characters_in_oidc_claims_on_postgresql(settings):
    from tests.accounts import test_oidc_mapping as mapping

    settings.PLINTH_OIDC_USERNAME_CLAIM = "preferred_username"
    settings.PLINTH_OIDC_ADMIN_GROUPS = []
    mapping.test_control_characters_in_claims_are_left_out_and_a_subject_with_them_is_refused()
