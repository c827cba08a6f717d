"""A cancelled run has a usage outcome of its own, recorded once, whichever way it ended (cancelled while
queued, stopped by its executor, ended by the reaper), and insights count it: started runs are never left
without an outcome, and a cancelled run is neither a success nor a failure."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from portal.accounts import services as account_services
from portal.insights import capture, rollup, selectors
from portal.insights.models import Event
from portal.scaffolder import executor, services
from portal.scaffolder.models import Run, RunStatus

from .conftest import register_template, run_inline, start, unique
from .test_cancel import TEMPLATE

pytestmark = pytest.mark.django_db


@pytest.fixture
def captured(settings):
    """The in-process capture buffer, empty (as tests/insights' capture_buffer); flush_now() writes it."""
    settings.PLINTH_ANALYTICS = True
    settings.PLINTH_ANALYTICS_REDIS_URL = None
    capture._state.pop("buffer", None)
    yield capture._buffer()
    capture._state.pop("buffer", None)


@pytest.fixture
def template(org, scaffolder_root, tmp_path):
    return register_template(tmp_path, TEMPLATE % unique("cancel-usage"))


def _new_run(org, template) -> Run:
    run = start(org["users"]["alice"], template.name, {}, entity=template)
    Run.objects.filter(pk=run.pk).update(owner_team=org["teams"]["fraud-ml"])
    run.refresh_from_db()
    return run


def _outcomes(run: Run) -> list[str]:
    capture.flush_now()
    return sorted(Event.objects.filter(subject=run.template_ref, type__startswith="template_run_")
                  .exclude(type="template_run_started").values_list("type", flat=True))


def test_a_run_cancelled_while_queued_records_one_cancelled_outcome(org, template, captured):
    run = _new_run(org, template)
    services.run_cancel(run=run, actor=org["users"]["alice"])
    with pytest.raises(services.CancelRefused):
        services.run_cancel(run=run, actor=org["users"]["alice"])
    assert services.runs_reap()["failed"] == []
    assert _outcomes(run) == ["template_run_cancelled"]
    event = Event.objects.get(type="template_run_cancelled")
    assert event.user_id == org["users"]["alice"].pk and event.team_id == org["teams"]["fraud-ml"].pk
    assert event.value is None, "it never ran"


def test_a_running_run_stopped_by_its_executor_records_one_cancelled_outcome(org, template, captured):
    claimed = services.run_claim(_new_run(org, template).pk, "task-1")
    services.run_cancel(run=claimed, actor=org["users"]["alice"])
    run = executor.execute(claimed)
    assert run.status == RunStatus.CANCELLED
    services.run_finish(run, ok=False, cancelled=True)  # a second end (a late reaper) says nothing more
    assert _outcomes(run) == ["template_run_cancelled"]
    assert Event.objects.get(type="template_run_cancelled").value is not None, "how long it ran"


def test_the_reaper_ending_a_run_cancelled_records_one_cancelled_outcome(org, template, captured):
    run = services.run_claim(_new_run(org, template).pk, "task-lost")
    services.run_cancel(run=run, actor=org["users"]["alice"])
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.runs_reap()["cancelled"] == [str(run.uid)]
    assert services.runs_reap().get("cancelled") is None
    assert _outcomes(run) == ["template_run_cancelled"]


def test_insights_count_cancelled_runs_as_their_own_outcome(org, template, captured):
    """Three runs of one template: one succeeds, one is cancelled queued, one is stopped while running.
    Insights (selector, API, dashboard CSV) show 3 runs = 1 succeeded + 2 cancelled, success rate 100 %."""
    run_inline(_new_run(org, template))
    services.run_cancel(run=_new_run(org, template), actor=org["users"]["alice"])
    claimed = services.run_claim(_new_run(org, template).pk, "task-2")
    services.run_cancel(run=claimed, actor=org["users"]["alice"])
    executor.execute(claimed)
    capture.flush_now()
    now = timezone.now()
    rollup.rollup_range(now - timedelta(days=1), now + timedelta(days=1))
    today = now.date()
    [row] = [t for t in selectors.top_templates(today, today + timedelta(days=1))
             if t["entityref"] == claimed.template_ref]
    assert (row["count"], row["succeeded"], row["failed"], row["cancelled"]) == (3, 1, 0, 2)
    assert row["success_rate"] == 1.0, "a cancelled run is not a failed one"
    assert row["count"] == row["succeeded"] + row["failed"] + row["cancelled"], "every started run has an outcome"

    _, raw = account_services.token_create(user=org["users"]["grace"], name="insights")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = api.get(f"/api/v1/insights/events?type=top_templates&start_date={today}&end_date={today}").json()
    [shown] = [t for t in body["data"] if t["entityref"] == claimed.template_ref]
    assert (shown["count"], shown["succeeded"], shown["failed"], shown["cancelled"]) == (3, 1, 0, 2)

    page = Client()
    page.force_login(org["users"]["grace"])
    html = page.get("/insights/usage/", {"start": str(today), "end": str(today)}).content.decode()
    row_html = html.split(f"<code>{claimed.template_ref}</code>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-label="Cancelled">2</td>' in row_html, row_html
