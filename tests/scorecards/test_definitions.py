"""Definitions and the engine: the shipped scorecards compile, levels count OpsLevel's way, and every
broken definition or rule fails closed with a message naming the file — never an exception."""

from __future__ import annotations

import pytest

from portal.scorecards import definitions, engine, services
from portal.scorecards.definitions import DefinitionError

from .conftest import MINI, write

FACTS = {"kind": "component", "lifecycle": "production", "owner": {"ref": "group:default/a", "team": "a"},
         "descriptor": {"description": True, "system": True, "links": 1, "annotations": []},
         "slo": None}


def test_shipped_scorecards_load_and_compile():
    cards = {c.name: c for c in definitions.load_all()}
    assert set(cards) == {"production-readiness", "service-basics"}
    for card in cards.values():
        assert card.error == ""
        assert len(card.checks) == 10
        assert card.levels == ["Bronze", "Silver", "Gold"]
        assert engine.compiled(card).errors == {}


def test_level_needs_every_check_at_and_below_it():
    card = definitions.parse(definitions.folder() / "x.yaml", MINI)
    # Gold's check passes but Silver's fails: the entity is Bronze, not Gold.
    assert services.level_for(card, {"owner": [True, ""], "described": [False, ""], "custom": [True, ""]}) == (
        "Bronze", 1)
    assert services.level_for(card, {"owner": [False, ""], "described": [True, ""], "custom": [True, ""]}) == ("", 0)
    assert services.level_for(card, {"owner": [True, ""], "described": [True, ""], "custom": [True, ""]}) == (
        "Gold", 3)


def test_facts_absent_today_fail_their_checks():
    card = next(c for c in definitions.load_all() if c.name == "production-readiness")
    out = engine.compiled(card).evaluate([{**FACTS, "kind": "model"}])[0]
    assert out["slo-defined"].passed is False and out["slo-defined"].error == ""
    assert out["owner"].passed is True


@pytest.mark.parametrize(("text", "message"), [
    ("name: [unclosed", "not valid YAML"),
    ("name: a\nname: b\nchecks: []", "duplicate key 'name'"),
    ("name: Bad Name\nchecks: [{id: x, rule: a.rego, reads: [owner]}]", "name must be lowercase"),
    ("name: a\nchecks: [{id: x, rule: a.rego, reads: [salary]}]", "unknown fact 'salary'"),
    ("name: a\nchecks: [{id: x, level: Platinum, rule: a.rego, reads: [owner]}]", "'Platinum' is not one of the levels"),
    ("name: a\nchecks: [{id: x, rule: ../etc.rego, reads: [owner]}]", "checks[0].rule must name a .rego file"),
    ("name: a\nchecks: [{id: x, manual: true, rule: a.rego}]", "a manual check has no rule"),
    ("name: a\nchecks: [{id: x, rule: a.rego, reads: [owner], deadline: soon}]", "'soon' is not a date"),
    ("name: a\nlevels: [Gold, Gold]\nchecks: [{id: x, rule: a.rego, reads: [owner]}]", "distinct names"),
    ("name: a\nchecks: [{id: x, rule: a.rego, reads: [owner]}, {id: x, rule: b.rego, reads: [owner]}]", "two checks"),
])
def test_a_bad_definition_is_listed_with_its_error(card_dir, text, message):
    write(card_dir, "broken.yaml", text)
    cards = {c.path.name: c for c in definitions.load_all()}
    assert message in cards["broken.yaml"].error
    assert cards["broken.yaml"].error.startswith("broken.yaml")
    assert cards["production-readiness.yaml"].error == ""  # the others are unaffected
    with pytest.raises(DefinitionError):
        definitions.parse(card_dir / "broken.yaml", text)


@pytest.mark.parametrize(("rule", "error"), [
    ("package plinth.checks.custom\nimport rego.v1\npass(f) := f.lifecycle ==\n", "checks/custom.rego: does not compile"),
    ("package plinth.checks.other\nimport rego.v1\npass(f) := true\n", "package must be plinth.checks.custom"),
    ("package plinth.checks.custom\nimport rego.v1\npass(f) := true with input as {}\n", "`with … as` is not supported"),
    (None, "checks/custom.rego does not exist"),
])
def test_a_broken_rule_fails_its_check_closed_and_names_the_file(card_dir, rule, error):
    write(card_dir, "mini.yaml", MINI)
    if rule is not None:
        write(card_dir, "checks/custom.rego", rule)
    card = definitions.get("mini")
    compiled = engine.compiled(card)
    assert error in compiled.errors["custom"]
    out = compiled.evaluate([FACTS])[0]
    assert out["custom"].passed is False and error in out["custom"].error
    assert out["owner"].passed is True and out["described"].passed is True  # healthy checks still run


def test_a_rule_that_returns_nothing_fails_closed(card_dir):
    write(card_dir, "mini.yaml", MINI)
    write(card_dir, "checks/custom.rego",
          'package plinth.checks.custom\n\nimport rego.v1\n\npass(f) if f.lifecycle == "production"\n')
    compiled = engine.compiled(definitions.get("mini"))
    passing, undefined = compiled.evaluate([FACTS, {**FACTS, "lifecycle": "experimental"}])
    assert passing["custom"].passed is True
    assert undefined["custom"].passed is False
    assert "returned nothing" in undefined["custom"].error


def test_a_rule_that_returns_a_non_boolean_fails_closed(card_dir):
    write(card_dir, "mini.yaml", MINI)
    write(card_dir, "checks/custom.rego", 'package plinth.checks.custom\n\nimport rego.v1\n\npass(f) := "yes"\n')
    out = engine.compiled(definitions.get("mini")).evaluate([FACTS])[0]
    assert out["custom"].passed is False and "not a boolean" in out["custom"].error


def test_a_rule_sees_only_the_facts_it_reads(card_dir):
    write(card_dir, "mini.yaml", MINI.replace("reads: [lifecycle]", "reads: [owner.team]"))
    # Reads the description, which it did not declare: it sees null and fails, whatever the entity says.
    write(card_dir, "checks/custom.rego", "package plinth.checks.custom\n\nimport rego.v1\n\n"
          "pass(f) if f.descriptor.description == true\n\npass(f) := false if not f.descriptor\n")
    out = engine.compiled(definitions.get("mini")).evaluate([FACTS])[0]
    assert out["custom"].passed is False


def test_identical_projections_are_evaluated_once(card_dir):
    write(card_dir, "mini.yaml", MINI)
    write(card_dir, "checks/custom.rego", 'package plinth.checks.custom\n\nimport rego.v1\n\npass(f) := true\n')
    compiled = engine.compiled(definitions.get("mini"))
    teams = [{**FACTS, "owner": {"ref": "", "team": f"t{i % 3}"}} for i in range(300)]
    out = compiled.evaluate(teams)
    assert all(o["owner"].passed for o in out)
    assert sum(1 for (i, _key) in compiled._memo if compiled.healthy[i].id == "owner") == 3


def test_an_edited_rule_is_recompiled(card_dir):
    write(card_dir, "mini.yaml", MINI)
    write(card_dir, "checks/custom.rego", 'package plinth.checks.custom\n\nimport rego.v1\n\npass(f) := true\n')
    assert engine.compiled(definitions.get("mini")).evaluate([FACTS])[0]["custom"].passed is True
    write(card_dir, "checks/custom.rego", 'package plinth.checks.custom\n\nimport rego.v1\n\npass(f) := false\n')
    assert engine.compiled(definitions.get("mini")).evaluate([FACTS])[0]["custom"].passed is False
