"""OpenSLO files: what Plinth accepts, and every bad file refused with a message naming the file and the
field, storing nothing of it (the SLOs stay as the last valid file declared them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.slo import openslo, services
from portal.slo.models import SLO, SLOFile

from .conftest import CHECKOUT_SLO, SEARCH_SLO, register


def specs(text: str):
    return openslo.parse(text, "slo.yaml")


def test_the_examples_parse_into_one_spec_per_objective():
    (checkout,), errors = specs(CHECKOUT_SLO)
    assert not errors
    assert (checkout.name, checkout.indicator, checkout.target, checkout.window.seconds) == (
        "checkout-availability", "ratio", 0.99, 28 * 86400)
    assert checkout.bad.startswith("sum(http_requests_total") and not checkout.good
    (search,), errors = specs(SEARCH_SLO)
    assert not errors and search.slice_seconds == 3600 and search.slice_target == 0.95
    assert openslo.Spec.from_json(search.to_json()) == search


THRESHOLD = """apiVersion: openslo/v1
kind: SLO
metadata: {name: latency}
spec:
  indicator:
    metadata: {name: p99}
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec: {query: 'histogram_quantile(0.99, sum by (le) (rate(latency_bucket[{{.window}}])))'}
  timeWindow: [{duration: 1M, isRolling: false, calendar: {startTime: "2026-01-01 00:00:00", timeZone: Europe/Berlin}}]
  budgetingMethod: Occurrences
  objectives:
    - {displayName: fast, op: lte, value: 0.25, target: 0.95}
    - {displayName: not slow, op: lt, value: 1, target: 0.999}
"""


def test_threshold_objectives_and_calendar_windows():
    (fast, slow), errors = specs(THRESHOLD)
    assert not errors
    assert (fast.objective, fast.op, fast.value, slow.objective) == ("fast", "lte", 0.25, "not slow")
    start, end = fast.window.bounds(datetime(2026, 3, 31, 23, 30, tzinfo=UTC))  # already 1 April in Berlin
    assert (start.isoformat(), end.isoformat()) == ("2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00")


@pytest.mark.parametrize(("change", "says"), [
    (("budgetingMethod: Occurrences", "budgetingMethod: Sometimes"),
     "document 1: spec.budgetingMethod: must be one of Occurrences, Timeslices, RatioTimeslices, not 'Sometimes'"),
    (("target: 0.99", "target: 1.5"), "spec.objectives[0].target: must be between 0 and 1 (exclusive)"),
    (("target: 0.99", "target: '99%'"), "spec.objectives[0].target: must be a number"),
    (("kind: SLO", "kind: Service"), "document 1: kind: must be SLO or SLI, not 'Service'"),
    (("apiVersion: openslo/v1", "apiVersion: openslo/v2alpha"), "apiVersion: must be openslo/v1"),
    (("  timeWindow:\n    - duration: 28d\n      isRolling: true\n", ""), "spec.timeWindow: is required"),
    (("duration: 28d", "duration: 28 days"), "spec.timeWindow[0].duration: must be a duration such as"),
    (("  objectives:\n    - displayName: 99 % of requests\n      target: 0.99\n", "  objectives: []\n"),
     "spec.objectives: must list at least one objective"),
    (("type: Prometheus", "type: Datadog"), "metricSource.type: only Prometheus is supported, not 'Datadog'"),
    (('query: sum(http_requests_total{service="checkout"}) - sum(http_requests_total{service="checkout"} offset {{.window}})',
      "query: sum(rate(http_requests_total[5m]))"), "must contain {{.window}}"),
    (("  name: checkout-availability", "  name: Checkout Availability"), "metadata.name: must be lowercase"),
    # What no database would store (PostgreSQL refused the row and the evaluation pass stopped there):
    (("displayName: 99 % of requests", "displayName: " + "x" * 201),
     "spec.objectives[0].displayName: is 201 characters long; at most 200 are accepted"),
    (("  displayName: Checkout availability", '  displayName: "Checkout\\0"'),
     "metadata.displayName: must not contain a NUL character"),
    # Past about 2,000 years every evaluation raised OverflowError (now − window is before year 1) and the
    # owner never learned why; anything over a year is refused where it is written.
    (("duration: 28d", "duration: 999999d"), "spec.timeWindow[0].duration: must be at most a year (366d), not '999999d'"),
    (("duration: 28d", "duration: 367d"), "spec.timeWindow[0].duration: must be at most a year (366d), not '367d'"),
    (("duration: 28d", "duration: 53w"), "spec.timeWindow[0].duration: must be at most a year (366d), not '53w'"),
])
def test_a_bad_file_names_file_and_field(change, says):
    old, new = change
    assert old in CHECKOUT_SLO
    found, errors = specs(CHECKOUT_SLO.replace(old, new))
    assert found == []
    text = "\n".join(str(e) for e in errors)
    assert "slo.yaml" in text and says in text, text


@pytest.mark.parametrize("duration", ["366d", "52w", "8784h", "90d", "1s"])
def test_a_rolling_window_up_to_a_year_is_accepted(duration):
    (checkout,), errors = specs(CHECKOUT_SLO.replace("duration: 28d", f"duration: {duration}"))
    assert not errors and checkout.window.text == duration


@pytest.mark.parametrize(("window", "slice_", "says"), [
    ("{duration: 1d, isRolling: true}", "999999w", "timeSliceWindow: must be at most a year (366d), not '999999w'"),
    # A calendar window has no `seconds`: its slices were not compared with it at all.
    ("{duration: 1d, isRolling: false}", "999999w", "timeSliceWindow: must be at most a year (366d), not '999999w'"),
    ("{duration: 1d, isRolling: false}", "25h", "spec.objectives[0].timeSliceWindow: is longer than the timeWindow"),
    ("{duration: 1M, isRolling: false}", "5w", "spec.objectives[0].timeSliceWindow: is longer than the timeWindow"),
])
def test_a_time_slice_longer_than_its_window_or_a_year_is_refused(window, slice_, says):
    text = SEARCH_SLO.replace("    - duration: 1d\n      isRolling: true\n", f"    - {window}\n")
    text = text.replace("timeSliceWindow: 1h", f"timeSliceWindow: {slice_}")
    found, errors = specs(text)
    assert found == [] and says in "\n".join(str(e) for e in errors), errors


@pytest.mark.parametrize(("window", "slice_"), [("{duration: 1d, isRolling: false}", "1d"),
                                                ("{duration: 1M, isRolling: false}", "4w"),
                                                ("{duration: 1Y, isRolling: false}", "52w")])
def test_a_calendar_window_takes_slices_up_to_its_shortest_period(window, slice_):
    text = SEARCH_SLO.replace("    - duration: 1d\n      isRolling: true\n", f"    - {window}\n")
    (search,), errors = specs(text.replace("timeSliceWindow: 1h", f"timeSliceWindow: {slice_}"))
    assert not errors and search.slice_text == slice_


def test_missing_fields_and_a_dangling_ref_are_each_named():
    text = "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicatorRef: nope\n"
    found, errors = specs(text)
    messages = [str(e) for e in errors]
    assert found == []
    assert any("spec.indicatorRef: no kind: SLI named 'nope' in this file" in m for m in messages)
    assert any("spec.budgetingMethod: is required" in m for m in messages)
    assert any("spec.objectives: is required" in m for m in messages)
    assert all(m.startswith("slo.yaml:") for m in messages)  # with the line


def test_the_demo_file_is_valid():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "catalog" / "demo" / "fraud" / "slo.yaml").read_text()
    found, errors = specs(text)
    assert errors == [] and [(s.name, s.budgeting, s.indicator) for s in found] == [
        ("scoring-availability", "Occurrences", "ratio"), ("scoring-latency", "Timeslices", "threshold")]


def test_not_yaml_and_not_a_mapping():
    assert "slo.yaml" in str(specs("a: [unclosed\n")[1][0])
    assert "must be a mapping" in str(specs("- just\n- a list\n")[1][0])


@pytest.mark.django_db
def test_a_bad_file_stores_nothing_and_keeps_the_last_valid_slos(db, tmp_path):
    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    assert services.slo_file_sync(entity=entity) == []
    before = list(SLO.objects.filter(entity=entity).values_list("name", "target"))
    bad = CHECKOUT_SLO.replace("target: 0.99", "target: 1.5") + SEARCH_SLO.replace("apiVersion", "\n---\napiVersion", 1)
    (tmp_path / "checkout" / "slo.yaml").write_text(bad, encoding="utf-8")
    problems = services.slo_file_sync(entity=entity)
    assert problems and "target: must be between 0 and 1" in problems[0]
    assert list(SLO.objects.filter(entity=entity).values_list("name", "target")) == before  # no search-hours
    assert SLOFile.objects.get(entity=entity).errors == problems


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "says"), [
    ("../outside.yaml", "resolves outside the registered location's folder; refused"),
    ("/etc/passwd", "must be a path relative to the descriptor"),
    ("//[x/slo.yaml", "must be a path relative to the descriptor"),  # urllib cannot read it: no crash
    ("missing.yaml", "the file 'missing.yaml' does not exist next to the descriptor"),
])
def test_a_path_escaping_the_location_or_missing_is_refused(db, tmp_path, path, says):
    (tmp_path / "outside.yaml").write_text(CHECKOUT_SLO, encoding="utf-8")
    entity = register(tmp_path / "inside", "checkout", None, path=path)
    problems = services.slo_file_sync(entity=entity)
    assert len(problems) == 1 and says in problems[0] and "plinth.dev/openslo" in problems[0]
    assert not SLO.objects.filter(entity=entity).exists()


@pytest.mark.django_db
def test_removing_the_annotation_removes_the_slos(db, tmp_path):
    from catalog import services as catalog_services
    from catalog.models import Entity, Location

    entity = register(tmp_path / "checkout", "checkout", CHECKOUT_SLO)
    services.slo_file_sync(entity=entity)
    assert SLO.objects.filter(entity=entity).exists()
    descriptor = tmp_path / "checkout" / "catalog-info.yaml"
    descriptor.write_text(descriptor.read_text().replace("    plinth.dev/openslo: slo.yaml\n", "    x.dev/y: z\n"))
    catalog_services.location_refresh(location=Location.objects.get(target=str(descriptor)))
    services.slo_file_sync(entity=Entity.objects.get(pk=entity.pk))
    assert not SLO.objects.filter(entity=entity).exists() and not SLOFile.objects.filter(entity=entity).exists()
