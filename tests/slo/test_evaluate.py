"""SLO evaluation against a real Prometheus loaded with known series (conftest.py): the SLI, the error
budget, the burn rates and the multi-window alerts match numbers worked out by hand; a rejected query and
an unreachable Prometheus keep the last values (stale) and say why; `page_burn` is sent once when a
page-level condition starts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.slo import services, signals
from portal.slo.models import SLO, Evaluation, SLOFile
from tests.services import free_port

from .conftest import CHECKOUT_SLO, NOW, SEARCH_SLO, register

pytestmark = pytest.mark.django_db


def test_occurrences_budget_and_burn_rates_match_the_hand_computed_numbers(db, prometheus, tmp_path):
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    stats = services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    assert stats == {"entities": 1, "file_errors": 0, "evaluated": 1, "problems": 0}
    slo = SLO.objects.get(entity=entity)
    assert (slo.name, slo.objective, slo.target, slo.budgeting, slo.window) == (
        "checkout-availability", "99 % of requests", 0.99, "Occurrences", "28d")
    # 28 days: 10,000 requests, 30 errors → SLI 9,970 / 10,000.
    assert slo.total == 10_000 and slo.good == 9_970
    assert slo.sli == pytest.approx(0.997)
    # The budget is 1 % of 10,000 = 100 errors; 30 spent → 70 left, 70 %.
    assert slo.budget_remaining == pytest.approx(0.70)
    assert (slo.budget_amount, slo.budget_unit) == (pytest.approx(70), "events")
    # Burn = error ratio / 1 %. 5m: 2/10; 30m: 12/60; 1h: 24/120; 2h: 24/240; 6h: 24/720;
    # 1d: 24/(720 + 216); 3d: 24/(720 + 792).
    expected = {"5m": 20, "30m": 20, "1h": 20, "2h": 10, "6h": 24 / 720 / 0.01, "1d": 24 / 936 / 0.01,
                "3d": 24 / 1512 / 0.01}
    assert slo.burn == pytest.approx(expected)
    firing = {(a["long"], a["short"]): a["firing"] for a in slo.alerts}
    # page 1h/5m at 14.4: 20 and 20; page 6h/30m at 6: 3.33 no; ticket 1d/2h at 3: 2.56 no; ticket 3d/6h at 1: yes.
    assert firing == {("1h", "5m"): True, ("6h", "30m"): False, ("1d", "2h"): False, ("3d", "6h"): True}
    assert slo.paging == ["1h"] and not slo.problem and not slo.stale
    assert Evaluation.objects.filter(slo=slo).count() == 1


def test_timeslices_count_good_hours_and_spend_time(db, prometheus, tmp_path):
    entity = register(tmp_path / "search", "search", SEARCH_SLO)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    slo = SLO.objects.get(entity=entity)
    assert slo.budgeting == "Timeslices" and slo.objective == "objective-1"
    # 24 hourly slices in the day, those ending 03:00, 07:00 and 11:00 had 10 % errors (≥ 5 %: bad).
    assert slo.total == 24 and slo.sli == pytest.approx(21 / 24)
    # Allowed: 10 % of 24 slices = 2.4 slices; 3 spent → 1 − 3/2.4 = −25 %, (2.4 − 3) h = −36 minutes.
    assert slo.budget_remaining == pytest.approx(-0.25)
    assert (slo.budget_amount, slo.budget_unit) == (pytest.approx(-2160), "seconds")
    # 1h: the slice ending 12:00 (good); 2h: 11:00 bad of two; 6h: 07:00 and 11:00 bad of six;
    # 1d: 3 of 24; 3d: the data's 47 whole hours, 3 bad. Windows shorter than a slice have no rate.
    assert slo.burn == pytest.approx({"5m": None, "30m": None, "1h": 0, "2h": 0.5 / 0.1, "6h": (2 / 6) / 0.1,
                                      "1d": (3 / 24) / 0.1, "3d": (3 / 47) / 0.1})
    assert not [a for a in slo.alerts if a["firing"] and a["severity"] == "page"]


def test_a_page_level_burn_sends_page_burn_once(db, prometheus, tmp_path, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, **kwargs):
        received.append((sender.name, kwargs["entity"].ref, kwargs["window"], kwargs["burn_rate"],
                         kwargs["threshold"]))

    signals.page_burn.connect(receiver, dispatch_uid="test-page-burn")
    try:
        entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
        with django_capture_on_commit_callbacks(execute=True):
            services.evaluate_entities(entity_ids=[entity.id], now=NOW)
        assert received == [("checkout-availability", "component:default/checkout", "1h/5m", pytest.approx(20), 14.4)]
        with django_capture_on_commit_callbacks(execute=True):  # still burning: no second signal
            services.evaluate_entities(entity_ids=[entity.id], now=NOW)
        assert len(received) == 1
        # Six hours earlier nothing burned: the condition ends, and starts again at NOW.
        with django_capture_on_commit_callbacks(execute=True):
            services.evaluate_entities(entity_ids=[entity.id], now=NOW - timedelta(hours=6))
        assert SLO.objects.get(entity=entity).paging == []
        with django_capture_on_commit_callbacks(execute=True):
            services.evaluate_entities(entity_ids=[entity.id], now=NOW)
        assert len(received) == 2
    finally:
        signals.page_burn.disconnect(dispatch_uid="test-page-burn")


def test_a_page_level_burn_opens_one_incident_on_the_entity(db, prometheus, tmp_path,
                                                           django_capture_on_commit_callbacks):
    """The receiver where the two apps meet (portal/incidents/receivers.py): a page-level burn opens an
    SLO incident linked to the entity; a new burn episode while it is unresolved adds no second one."""
    from portal.incidents.models import Incident

    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    incident = Incident.objects.get()
    assert (incident.source, incident.severity, incident.status) == ("slo", "sev2", "open")
    assert [link.entity.ref for link in incident.links.all()] == ["component:default/checkout"]
    assert "checkout-availability" in incident.summary and "1h/5m" in incident.summary
    for at in (NOW - timedelta(hours=6), NOW):  # the condition ends, then starts again
        with django_capture_on_commit_callbacks(execute=True):
            services.evaluate_entities(entity_ids=[entity.id], now=at)
    assert Incident.objects.count() == 1


def test_a_query_prometheus_rejects_is_shown_and_keeps_the_last_values(db, prometheus, tmp_path):
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    broken = CHECKOUT_SLO.replace('sum(http_requests_total{service="checkout"}) -', 'sum(rate(http_requests_total[5m]) -')
    (tmp_path / "checkout" / "slo.yaml").write_text(broken, encoding="utf-8")
    stats = services.evaluate_entities(entity_ids=[entity.id], now=NOW + timedelta(minutes=5))
    assert stats["problems"] == 1
    slo = SLO.objects.get(entity=entity)
    assert slo.problem == "query" and slo.error.startswith("Prometheus refused the query: bad_data")
    assert "parse error" in slo.error
    assert slo.sli == pytest.approx(0.997) and slo.evaluated_at == NOW and slo.stale
    assert Evaluation.objects.filter(slo=slo).count() == 1  # nothing stored for the failed attempt


def test_prometheus_down_marks_the_values_stale_with_their_age(db, prometheus, tmp_path, settings):
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    settings.PLINTH_PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    later = NOW + timedelta(minutes=20)
    services.evaluate_entities(entity_ids=[entity.id], now=later)
    slo = SLO.objects.get(entity=entity)
    assert slo.problem == "unreachable" and slo.stale
    assert slo.error.startswith("Prometheus is unreachable: cannot reach http://127.0.0.1:")
    assert slo.evaluated_at == NOW and slo.checked_at == later and slo.sli == pytest.approx(0.997)


def test_a_portal_without_prometheus_says_so_as_a_fact_not_an_outage(db, tmp_path, settings):
    settings.PLINTH_PROMETHEUS_URL = ""
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    slo = SLO.objects.get(entity=entity)
    assert slo.problem == "unreachable" and slo.evaluated_at is None
    assert slo.error == ("Not evaluated: this portal is not connected to Prometheus "
                         "(an administrator sets PLINTH_PROMETHEUS_URL).")


def test_an_indicator_returning_several_series_is_refused(db, prometheus, tmp_path):
    several = CHECKOUT_SLO.replace(
        'sum(http_requests_total{service="checkout"}) - sum(http_requests_total{service="checkout"} offset {{.window}})',
        'sum by (code) (http_requests_total{service="checkout"}) - sum by (code) (http_requests_total{service="checkout"} offset {{.window}})')
    several = several.replace('sum(http_requests_total{service="checkout",code="500"})',
                              'sum by (code) (http_requests_total{service="checkout"})').replace(
        'sum(http_requests_total{service="checkout",code="500"} offset', 'sum by (code) (http_requests_total{service="checkout"} offset')
    entity = register(tmp_path / "checkout", "checkout", several)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    slo = SLO.objects.get(entity=entity)
    assert slo.problem == "query" and "2 series" in slo.error and "aggregate it" in slo.error


def test_a_counter_selector_is_wrapped_in_increase(db, prometheus, tmp_path):
    """`counter: true` with a bare selector: Plinth asks sum(increase(selector[window])). increase()
    extrapolates both counts by the same factor, so the ratio stays exact."""
    text = CHECKOUT_SLO.replace(
        'sum(http_requests_total{service="checkout",code="500"}) - sum(http_requests_total{service="checkout",code="500"} offset {{.window}})',
        'http_requests_total{service="checkout",code="500"}').replace(
        'sum(http_requests_total{service="checkout"}) - sum(http_requests_total{service="checkout"} offset {{.window}})',
        'http_requests_total{service="checkout"}')
    entity = register(tmp_path / "checkout", "checkout", text)
    services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    slo = SLO.objects.get(entity=entity)
    assert slo.burn["1h"] == pytest.approx(20) and slo.burn["6h"] == pytest.approx(24 / 720 / 0.01)


def test_infinite_values_from_prometheus_are_dropped_like_nan(db, prometheus):
    """A ratio over a window with bad events and no total is ±Inf in Prometheus: no JSON column stores
    it (PostgreSQL refused the evaluation's row and the pass stopped there), and it is no burn rate."""
    from portal.slo import prometheus as client

    assert client.query(prometheus, "vector(1) / vector(0)", NOW, 10) == []
    assert client.query(prometheus, "-1 / 0", NOW, 10) == []
    assert client.query(prometheus, "vector(0) / vector(0)", NOW, 10) == []
    assert client.query(prometheus, "vector(2)", NOW, 10) == [({}, 2.0)]


def test_one_entity_failing_unforeseen_leaves_the_others_evaluated(db, prometheus, tmp_path, monkeypatch):
    """A fault nobody foresaw in one entity's file or SLO (injected here) is logged and counted; the
    other entities are still read and evaluated (before, the pass stopped at it, every five minutes)."""
    broken = register(tmp_path / "broken", "broken", CHECKOUT_SLO)
    healthy = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    sync, evaluate = services.slo_file_sync, services.slo_evaluate
    assert sync(entity=broken) == []  # its SLO rows exist: the evaluation fails on them below

    def failing_sync(*, entity, now=None):
        if entity.pk == broken.pk:
            raise RuntimeError("unforeseen")
        return sync(entity=entity, now=now)

    def failing_evaluate(*, slo, now=None):
        if slo.entity_id == broken.pk:
            raise RuntimeError("unforeseen")
        return evaluate(slo=slo, now=now)

    monkeypatch.setattr(services, "slo_file_sync", failing_sync)
    monkeypatch.setattr(services, "slo_evaluate", failing_evaluate)
    stats = services.evaluate_entities(entity_ids=[broken.id, healthy.id], now=NOW)
    assert stats["entities"] == 2 and stats["file_errors"] == 1
    healthy_slos = SLO.objects.filter(entity=healthy)
    assert healthy_slos.exists() and all(s.evaluated_at == NOW and s.sli is not None for s in healthy_slos)
    assert stats["evaluated"] == healthy_slos.count()
    assert stats["problems"] == SLO.objects.filter(entity=broken).count() > 0


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"status": "success", "data": {"resultType": "vector", "result": [{"value": 7}]}}',
                                  b'{"status": "success", "data": {"resultType": "scalar", "result": [0, "many"]}}', b'"ok"'])
def test_json_that_is_not_a_prometheus_answer_is_unreachable_not_a_crash(body):
    """A proxy or a misconfigured URL answering some other JSON (a stand-in server: a real Prometheus
    never does this) raised AttributeError/TypeError out of the client: the cost tab's API answered 500."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from portal.slo import prometheus as client

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(client.Unreachable) as refused:
            client.query(url, "vector(1)", NOW, 5)
        assert "not a Prometheus query result" in str(refused.value)
    finally:
        server.shutdown()
        server.server_close()


def test_an_slo_whose_evaluation_fails_unforeseen_says_so_on_its_row_and_tab(db, demo_org, tmp_path, settings,
                                                                              monkeypatch):
    """An SLO whose evaluation raises something nobody foresaw (injected here: the OverflowError a
    999,999-day window raised, before such windows were refused) keeps its last values, and its row, tab
    and API say that it could not be evaluated. Before, the pass logged it and the row said nothing, every
    five minutes; the file itself is now refused at the field."""
    from django.test import Client

    from portal.slo import compute

    settings.PLINTH_PROMETHEUS_URL = ""  # the failure comes before any query
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    assert services.slo_file_sync(entity=entity) == []
    SLO.objects.filter(entity=entity).update(sli=0.997, evaluated_at=NOW - timedelta(hours=1))
    huge = CHECKOUT_SLO.replace("duration: 28d", "duration: 999999d")
    (tmp_path / "checkout" / "slo.yaml").write_text(huge, encoding="utf-8")

    def overflowing(spec, now, default_step):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(compute, "queries", overflowing)
    stats = services.evaluate_entities(entity_ids=[entity.id], now=NOW)
    assert stats == {"entities": 1, "file_errors": 1, "evaluated": 0, "problems": 1}
    problems = SLOFile.objects.get(entity=entity).errors
    assert len(problems) == 1 and "spec.timeWindow[0].duration: must be at most a year (366d)" in problems[0]
    slo = SLO.objects.get(entity=entity)
    assert slo.problem == "error" and slo.checked_at == NOW and slo.stale
    assert slo.error.startswith("Plinth could not evaluate this objective (OverflowError)")
    assert "date value" not in slo.error  # the exception's own words stay in the log
    assert slo.sli == 0.997 and slo.evaluated_at == NOW - timedelta(hours=1)  # the last values stay
    client = Client()
    client.force_login(demo_org["users"]["alice"])
    page = client.get("/catalog/component/default/checkout/slos/").content.decode()
    assert 'data-testid="slo-problem"' in page and "Plinth could not evaluate this objective" in page
    item = client.get("/api/v1/slos?entity=component:default/checkout").json()["items"][0]
    assert (item["problem"], item["error"]) == ("error", slo.error)
