"""Bad OpenLineage input: each answers 400 naming the field path (and the index in a batch), stores
nothing, and is never a 500."""

from __future__ import annotations

import json
import uuid

import pytest

from catalog.models import Entity
from portal.lineage.models import Edge, Event, Node, Run
from tests.lineage.conftest import facet, post, run_event

pytestmark = pytest.mark.django_db


def _without(path: str) -> dict:
    event = run_event()
    *parents, last = path.split(".")
    holder = event
    for part in parents:
        holder = holder[part]
    del holder[last]
    return event


def _deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"a": value}
    return value


CASES = [
    ("missing runId", _without("run.runId"), "run.runId"),
    ("missing eventTime", _without("eventTime"), "eventTime"),
    ("missing producer", _without("producer"), "producer"),
    ("runId not a UUID", {**run_event(), "run": {"runId": "run-42"}}, "run.runId"),
    ("unknown eventType", {**run_event(), "eventType": "EXPLODED"}, "eventType"),
    ("year 9999", {**run_event(), "eventTime": "9999-12-31T23:59:59Z"}, "eventTime"),
    ("before 1970", {**run_event(), "eventTime": "1969-07-20T20:17:00Z"}, "eventTime"),
    ("before year 1 in UTC", {**run_event(), "eventTime": "0001-01-01T00:30:00+01:00"}, "eventTime"),  # was a 500
    ("after 9999 in UTC", {**run_event(), "eventTime": "9999-12-31T23:59:59-01:00"}, "eventTime"),
    ("not a date", {**run_event(), "eventTime": "yesterday"}, "eventTime"),
    ("facet of 5 MB", run_event(run_facets={"blob": facet(data="x" * (5 * 1024 * 1024))}), "run.facets.blob"),
    ("facet 200 levels deep", run_event(run_facets={"deep": facet(tree=_deep(200))}), "run.facets.deep.tree"),
    ("100,000 inputs", run_event(inputs=[("pg", f"t{i}") for i in range(100_000)]), "inputs"),
    ("control character in a name", run_event(job=("etl", "orders\x1b[31m")), "job.name"),
    ("control character in a dataset", run_event(outputs=[("s3://b", "a\nb")]), "outputs[0].name"),
    ("empty namespace", run_event(inputs=[("", "t")]), "inputs[0].namespace"),
    ("a bad standard facet", run_event(job_facets={"sql": facet(query=42)}), "job.facets.sql.query"),
    ("a number for a name", {**run_event(), "job": {"namespace": "etl", "name": 7}}, "job.name"),
    ("not an event", {"hello": "world"}, ""),
    ("a DatasetEvent with a run", {**run_event(), "dataset": {"namespace": "a", "name": "b"}, "eventType": None},
     "eventType"),
]


@pytest.mark.parametrize("event,path", [pytest.param(e, p, id=name) for name, e, p in CASES])
def test_bad_events_are_400_naming_the_field_and_store_nothing(api, event, path):
    response = post(api, event)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["message"].startswith(path), (path, error["message"])
    assert [key for key in error["details"] if key.startswith(path or "body")], error["details"]
    assert not Event.objects.exists() and not Node.objects.exists() and not Entity.objects.exists()


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "not JSON"),
    (b'[{"eventType": "START", "producer": "https://x', "not JSON"),  # cut off inside a string
    (b'"', "not JSON"),
    (b"[]", "empty array"),
    (b'"START"', "expected an OpenLineage event"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 512"),
    (json.dumps(run_event()).replace('"airflow"', '"air\\u0000flow"').encode(), "null characters"),
])
def test_bodies_that_are_not_events_are_400(api, body, fragment):
    response = post(api, body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


def test_a_batch_of_10000_with_one_bad_event_names_its_index_and_stores_none(api):
    events = [run_event(job=("ci", f"job-{i % 50}"), inputs=[("pg", f"t{i % 300}")]) for i in range(10_000)]
    events[7777]["run"]["runId"] = "not-a-uuid"
    response = post(api, events)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("[7777].run.runId") and "event 7777" in error["message"]
    assert list(error["details"]) == ["[7777].run.runId"]
    assert not Run.objects.exists() and not Event.objects.exists() and not Edge.objects.exists()


def test_a_batch_over_the_cap_is_refused(api, settings):
    settings.PLINTH_LINEAGE_MAX_BATCH = 3
    response = post(api, [run_event() for _ in range(4)])
    assert response.status_code == 400 and "at most 3" in response.json()["error"]["message"]


def test_a_body_over_the_cap_is_413_before_reading(api, settings):
    settings.PLINTH_LINEAGE_MAX_BODY_BYTES = 64 * 1024
    response = post(api, run_event(run_facets={"blob": facet(data="x" * 100_000)}))
    assert response.status_code == 413


def test_a_failure_while_storing_rolls_the_whole_batch_back(api, monkeypatch):
    from portal.lineage import services

    def broken(self, events, runs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services._Ingest, "_edges", broken)
    with pytest.raises(RuntimeError):
        post(api, [run_event(), run_event(run_id=uuid.uuid4())])
    assert not Run.objects.exists() and not Node.objects.exists() and not Event.objects.exists()


def test_without_the_spec_the_endpoint_answers_503_and_stores_nothing(api, settings, tmp_path):
    settings.PLINTH_OPENLINEAGE_SPEC_DIR = str(tmp_path)
    response = post(api, run_event())
    assert response.status_code == 503 and "OpenLineage spec" in response.json()["error"]["message"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("text", ["é" * 1500, "\U0001f600" * 800, "\x01" * 700, "x" * 2100])
def test_the_facet_cap_counts_a_facet_as_json_writes_it_whatever_parser_read_the_body(api, settings, text):
    """orjson writes the stored event (UTF-8, compact); the cap still counts a facet as json writes it
    (\\u escapes): a facet under the cap in orjson's bytes but over it as json writes it is refused, and
    one whose event is small enough is not measured at all (events._facets)."""
    settings.PLINTH_LINEAGE_MAX_FACET_BYTES = 6000
    escaped = len(json.dumps(facet(data=text), separators=(",", ":")))
    response = post(api, run_event(run_facets={"blob": facet(data=text)}))
    if escaped > 6000:
        assert response.status_code == 400, (escaped, response.content[:200])
        assert response.json()["error"]["message"].startswith("run.facets.blob: ")
        assert not Event.objects.exists()
    else:
        assert response.status_code == 201


def test_the_cycle_collector_is_back_on_after_every_request(api, monkeypatch):
    """The ingest pauses Python's cycle collector (events.collector_paused); whatever the request's end
    (stored, refused, failed while storing) it runs again, and one that was off stays off."""
    import gc

    from portal.lineage import events, services

    assert post(api, run_event()).status_code == 201 and gc.isenabled()
    assert post(api, {**run_event(), "eventType": "EXPLODED"}).status_code == 400 and gc.isenabled()

    def broken(self, events, runs):
        assert not gc.isenabled()  # paused while storing
        raise RuntimeError("disk full")

    monkeypatch.setattr(services._Ingest, "_edges", broken)
    with pytest.raises(RuntimeError):
        post(api, run_event(run_id=uuid.uuid4()))
    assert gc.isenabled()
    gc.disable()
    try:
        with events.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_custom_facet_answer_the_same_on_every_database(api, constant):
    """JSON has no NaN or Infinity (RFC 8259), but Python's json writes and reads them. A custom facet
    holding one must get the same clear answer on SQLite and PostgreSQL (whose jsonb refuses the token),
    never a server error, and nothing half-written."""
    event = run_event("COMPLETE", outputs=[{"namespace": "s3://b", "name": "nan/table",
                                            "facets": {"custom": facet(score=0.5)}}])
    body = json.dumps(event).replace('"score": 0.5', f'"score": {constant}')
    answer = post(api, body)
    assert answer.status_code == 400, answer.content
    message = answer.json()["error"]["message"]
    assert constant.lstrip("-") in message and "JSON" in message, message
    assert not Event.objects.exists() and not Run.objects.exists()
