"""tests/shards.py: how `make test` splits the suite across parallel runs."""

from __future__ import annotations

import json

import pytest

from tests import shards


def test_spec_is_k_of_n():
    assert shards.parse_spec("2/3") == (2, 3)
    for bad in ("", "2", "0/2", "3/2", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            shards.parse_spec(bad)


def test_files_are_dealt_largest_first_to_the_least_loaded_shard():
    counts = {"a.py": 1, "b.py": 1, "c.py": 1, "d.py": 1, "new.py": 30}
    weights = {"a.py": 100.0, "b.py": 60.0, "c.py": 50.0, "d.py": 10.0}
    shard_of = shards.deal(counts, 2, weights)
    # a (100) → 1; b (60) → 2; c (50) → 2 (60 < 100); new (30 tests × 1 s) → 1; d → 2 (110 < 130)
    assert shard_of == {"a.py": 1, "b.py": 2, "c.py": 2, "new.py": 1, "d.py": 2}
    assert shards.deal(counts, 2, weights) == shard_of  # the same in every shard's process


def test_the_last_shard_starts_with_the_prod_run():
    counts = {"a.py": 1, "b.py": 1}
    shard_of = shards.deal(counts, 2, {"a.py": 50.0, "b.py": 40.0}, reserve_last=100.0)
    assert shard_of == {"a.py": 1, "b.py": 1}
    assert set(shards.deal(counts, 1, {})) == {"a.py", "b.py"}


def test_files_that_share_a_session_fixture_go_to_one_shard():
    counts = {"a.py": 1, "b.py": 1, "c.py": 1, "d.py": 1}
    weights = {"a.py": 100.0, "b.py": 90.0, "c.py": 20.0, "d.py": 10.0}
    assert shards.deal(counts, 2, weights) == {"a.py": 1, "b.py": 2, "c.py": 2, "d.py": 1}
    # a+d (110) is one unit: b (90) and c go to the other shard
    assert shards.deal(counts, 2, weights, together=[["a.py", "d.py", "missing.py"]]) == {
        "a.py": 1, "d.py": 1, "b.py": 2, "c.py": 2}
    assert shards.deal(counts, 2, weights, together=[["b.py", "c.py"]]) == {
        "b.py": 1, "c.py": 1, "a.py": 2, "d.py": 2}


def test_every_file_is_in_exactly_one_shard(tmp_path):
    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    items = [Item(f"tests/x/test_{i % 7}.py::test_{i}") for i in range(40)]
    (tmp_path / "w.json").write_text(json.dumps({"prod_phase": 3, "files": {"tests/x/test_0.py": 9}}))
    kept = [shards.select(items, k, 3, tmp_path / "w.json")[0] for k in (1, 2, 3)]
    assert sorted(i.nodeid for part in kept for i in part) == sorted(i.nodeid for i in items)
    for part in kept:
        assert part
        files = {i.nodeid.split("::")[0] for i in part}
        assert all(not files & {i.nodeid.split("::")[0] for i in other} for other in kept if other is not part)


def test_weights_are_recorded_per_file_from_junit_xml(tmp_path):
    sqlite, prod = tmp_path / "s.xml", tmp_path / "p.xml"
    sqlite.write_text(
        '<testsuites><testsuite><testcase classname="tests.core.test_shards" name="a" time="1.5"/>'
        '<testcase classname="tests.core.test_shards" name="b" time="2"/>'
        '<testcase classname="tests.core.test_shards.TestX" name="c" time="0.5"/></testsuite></testsuites>'
    )
    other = tmp_path / "s2.xml"  # the other shard's report
    other.write_text('<testsuite><testcase classname="tests.core.test_db_values" name="a" time="3"/></testsuite>')
    prod.write_text('<testsuite><testcase classname="tests.core.test_shards" name="a" time="7.25"/></testsuite>')
    data = shards.record([sqlite, other], prod, path=tmp_path / "out.json")
    assert data == {"prod_phase": 7.2, "together": [],
                    "files": {"tests/core/test_db_values.py": 3.0, "tests/core/test_shards.py": 4.0}}
    assert shards.load_weights(tmp_path / "out.json") == (data["files"], 7.2)
    assert shards.load_weights(tmp_path / "missing.json") == ({}, 0.0)


def test_each_shards_pytest_runs_write_the_junit_xml_that_record_reads():
    commands = [(False, ["python", "-m", "pytest", "-m", "not prod_smoke"]), (True, ["python", "-m", "pytest", "-x"]),
                (False, ["sh", "-c", "true"])]
    first, last = shards._shard_argv(1, 2, commands), shards._shard_argv(2, 2, commands)
    assert f"--junitxml={shards.LOG_DIR / 'shard-1.xml'}" in first
    assert not any("prod.xml" in part for part in first)  # the prod: run is the last shard's
    assert f"--junitxml={shards.LOG_DIR / 'shard-2.xml'}" in last
    prod_run = last[last.index("prod:"):]
    assert prod_run[:5] == ["prod:", "python", "-m", "pytest", "-x"]
    assert f"--junitxml={shards.LOG_DIR / 'prod.xml'}" in prod_run
    assert last[-5:] == ["sh", "-c", "true", "--shard", "2/2"]  # not pytest: no report asked of it
