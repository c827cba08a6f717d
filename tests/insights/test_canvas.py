"""The capability canvas file: the shipped one is valid and covers the five personas; a bad one is
refused with every problem naming its line and path in the file (also through `manage.py check`)."""

from __future__ import annotations

import copy

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from portal.insights import canvas, kpis

MINIMAL_TEXT = """\
version: 1
title: Test canvas
period_days: 7
personas:
  - id: ds
    name: Data scientist
    journeys:
      - id: find
        name: Find things
        capabilities:
          - id: search
            name: Search
            provided_by:
              - feature: search:page
            kpis:
              - id: zero
                name: Zero-result searches
                query: zero_result_search_share
                unit: percent
                direction: lower
                target: 5
                amber: 10
"""
MINIMAL = yaml.safe_load(MINIMAL_TEXT)


def problems_of(data) -> list[str]:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    parsed, problems = canvas.parse(text, "canvas.yaml")
    assert (parsed is None) == bool(problems)
    return [str(p) for p in problems]


def changed(edit) -> dict:
    data = copy.deepcopy(MINIMAL)
    edit(data)
    return data


def kpi0(data) -> dict:
    return data["personas"][0]["journeys"][0]["capabilities"][0]["kpis"][0]


KPI = "personas[0].journeys[0].capabilities[0].kpis[0]"


def test_the_shipped_canvas_is_valid_and_covers_the_personas():
    data = canvas.load()
    assert [p["name"] for p in data["personas"]] == [
        "Data scientist", "ML engineer", "Reviewer (risk and compliance)", "Platform admin", "Leadership"]
    assert canvas.unknown_queries(data) == []
    assert {kpi["query"] for _, kpi in canvas.iter_kpis(data)} <= set(kpis.REGISTRY)
    assert len(list(canvas.iter_kpis(data))) >= 12
    call_command("check")  # insights.E001 / W001 would raise or print


def test_a_minimal_canvas_is_valid():
    assert problems_of(MINIMAL) == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("direction: lower", "direction: up", f"canvas.yaml:20: {KPI}.direction: must be one of higher, lower; got 'up'"),
    ("                target: 5\n", "", f"canvas.yaml:16: {KPI}.target: target is required"),
    ("target: 5", "target: five", f"canvas.yaml:21: {KPI}.target: 'five' is not of type 'number'"),
    ("amber: 10", "amber: 10\n                colour: red", f"canvas.yaml:16: {KPI}: unknown field(s) colour"),
    ("period_days: 7", "period_days: 0", "canvas.yaml:3: period_days: 0 is less than the minimum of 1"),
    ("query: zero_result_search_share", "query: DROP TABLE", f"canvas.yaml:18: {KPI}.query: 'DROP TABLE' does not match"),
    ("amber: 10", "amber: 10\n                params: {team: [a]}", f"canvas.yaml:23: {KPI}.params.team: ['a'] is not of type"),
])
def test_schema_problems_name_the_line_and_path(old, new, expected):
    assert old in MINIMAL_TEXT
    found = problems_of(MINIMAL_TEXT.replace(old, new))
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: kpi0(d).update(amber=2),
     f"{KPI}.amber: amber (2) must be at or above the target (5) when lower is better"),
    (lambda d: d["personas"][0]["journeys"][0]["capabilities"][0]["provided_by"].append({"feature": "nowhere:page"}),
     "personas[0].journeys[0].capabilities[0].provided_by[1].feature: no portal page is named 'nowhere:page'"),
    (lambda d: d["personas"].append(copy.deepcopy(d["personas"][0])), "personas[1].id: duplicate id 'ds'"),
    (lambda d: d["personas"][0]["journeys"][0]["capabilities"][0]["provided_by"][0].update(
        entity="model:default/x"), "provided_by[0]: name either a feature or an entity, not both"),
])
def test_rule_problems_name_the_path(edit, expected):
    found = problems_of(changed(edit))
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 1\ntitle: [unclosed\n", "canvas.yaml:3: invalid YAML"),
    ("version: 1\nversion: 2\n", "canvas.yaml:2: duplicate key 'version' (first defined on line 1)"),
    ("version: !!python/object:os.system 1\n", "canvas.yaml:1: tag !!python/object:os.system is not allowed"),
    ("- a\n- b\n", "canvas.yaml:1: document 1 is a list, not a mapping"),
    ("a: 1\n---\nb: 2\n", "canvas.yaml:1: expected one YAML document, found 2"),
])
def test_unreadable_yaml_is_reported_with_its_line(text, expected):
    found = problems_of(text)
    assert found and found[0].startswith(expected), found


def test_manage_py_check_names_the_bad_canvas_path(tmp_path, settings):
    bad = tmp_path / "canvas.yaml"
    bad.write_text(MINIMAL_TEXT.replace("direction: lower", "direction: up"))
    settings.PLINTH_INSIGHTS_CANVAS = str(bad)
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert f"insights.E001) canvas.yaml:20: {KPI}.direction: must be one of higher, lower" in str(caught.value)


def test_manage_py_check_warns_of_an_unknown_query(tmp_path, settings, capsys):
    path = tmp_path / "canvas.yaml"
    path.write_text(yaml.safe_dump(changed(lambda d: kpi0(d).update(query="no_such_query")), sort_keys=False))
    settings.PLINTH_INSIGHTS_CANVAS = str(path)
    call_command("check")
    assert f"insights.W001) canvas.yaml: {KPI}: unknown query 'no_such_query'" in capsys.readouterr().err


@pytest.mark.parametrize(("direction", "current", "previous", "trend", "arrow", "delta"), [
    # A change that prints as 0.0 is no change: no arrow, no sign, no better/worse colour (was "▼ −0.0 h").
    ("lower", 0.7, 0.73, "same", "", "±0"),
    ("lower", 0.73, 0.7, "same", "", "±0"),
    ("higher", 5.0, 5.0, "same", "", "±0"),
    ("lower", 9.4, 9.5, "better", "▼", "−0.1 h"),
    ("lower", 0.76, 0.7, "worse", "▲", "+0.1 h"),
    ("higher", 12.0, 10.0, "better", "▲", "+2 h"),
    ("higher", 3.0, None, "", "", ""),
])
def test_the_trend_reads_the_change_as_printed(direction, current, previous, trend, arrow, delta):
    result = canvas.KpiResult({"name": "MTTA", "direction": direction, "unit": "hours"}, current, previous)
    assert (result.trend, result.arrow, result.delta) == (trend, arrow, delta)
