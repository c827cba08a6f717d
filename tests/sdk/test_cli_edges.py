"""`plinth` as a process against stand-in servers (tests/sdk/test_transport.py's `Scripted`) and bad
input: Ctrl-C, listings that fail, waits that time out, values files JSON cannot carry, environment
variables, URLs — each one clear line on stderr with the documented exit code, nothing stray on stdout."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from .conftest import PLINTH
from .test_cli import one_line_error
from .test_transport import Scripted


@pytest.fixture
def server():
    scripted = Scripted()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


@pytest.fixture
def against(server, plinth):
    """`plinth ARGS…` with PLINTH_URL at the stand-in server."""
    env = {"PLINTH_URL": server.url, "PLINTH_TOKEN": "plt_t"}
    return lambda *args, **kw: plinth(*args, env={**env, **kw.pop("env", {})}, **kw)


REQUEST = {"id": 1, "action": "deprecate", "target": "model:default/m", "state": "in-review",
           "stateLabel": "In review", "requester": "alice", "decisions": []}


def test_ctrl_c_during_a_wait_exits_130_interrupted(server, cli_env, tmp_path):
    for _ in range(40):
        server.answer(200, REQUEST)
    process = subprocess.Popen([PLINTH, "approvals", "wait", "1"], env={**cli_env, "PLINTH_URL": server.url,
                                                                       "PLINTH_TOKEN": "t"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not server.seen and time.monotonic() < deadline:  # the wait has begun
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, (process.returncode, out, err)
    assert err.strip().splitlines()[-1] == "plinth: interrupted" and "Traceback" not in err


def test_a_json_listing_that_fails_leaves_stdout_empty(server, against):
    server.answer(500, {"error": {"status": 500, "message": "Server error."}})
    failed = against("-o", "json", "tokens", "list")
    one_line_error(failed, 6, "HTTP 500")
    assert failed.stdout == ""
    server.answer(200, {"items": [], "pageInfo": {"nextCursor": None}})
    empty = against("-o", "json", "tokens", "list")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


@pytest.mark.parametrize("body", ["[1,2,3]", '"hello"', "null", "{}"])
def test_json_of_another_shape_is_exit_6(server, against, body):
    server.answer(200, body)
    one_line_error(against("whoami"), 6, "not the API's JSON")


def test_an_api_error_spanning_lines_is_one_line(server, against):
    server.answer(400, {"error": {"status": 400, "message": "bad\nvalue\n" * 3, "details": {"values": {"name": ["x"]}}}})
    one_line_error(against("whoami"), 2, "values.name: bad value bad value")


IMPORT = {"id": 7, "file": "c.csv", "provider": "aws", "status": "queued", "rows": 0, "periods": [], "totals": {},
          "error": ""}


def test_costs_import_wait_that_times_out_or_fails_exits_1(server, against, tmp_path):
    (tmp_path / "c.csv").write_text("BilledCost\n1\n")
    for _ in range(5):
        server.answer(200, IMPORT)
    timed_out = against("costs", "import", "c.csv", "--provider", "aws", "--wait", "--timeout", "1")
    one_line_error(timed_out, 1, "import 7 did not finish within 1 s", "queued")
    assert "queued" in timed_out.stdout  # the import as it last stood
    server.answers.clear()
    server.answer(200, IMPORT)
    server.answer(200, {**IMPORT, "status": "failed", "error": "row 2: BilledCost is not a number"})
    failed = against("costs", "import", "c.csv", "--provider", "aws", "--wait")
    one_line_error(failed, 1, "import 7 failed: row 2: BilledCost is not a number")


RUN = {"id": "r1", "status": "queued", "url": "/create/runs/r1"}


def test_a_values_file_keeps_dates_as_text_and_refuses_what_json_cannot_carry(server, against, tmp_path):
    (tmp_path / "dates.yaml").write_text("name: x\ndate: 2024-01-01\nwhen: 2024-01-01T10:00:00\nn: 3\n")
    server.answer(200, RUN)
    sent = against("templates", "run", "feature-set", "--values", "dates.yaml")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(server.received[-1][1])["values"] == {"name": "x", "date": "2024-01-01",
                                                            "when": "2024-01-01T10:00:00", "n": 3}
    for text, field in (("a: !!binary aGVsbG8=\n", "a: binary data"), ("a: {b: [1, .nan]}\n", "a.b[1]: nan"),
                        ("a: .inf\n", "a: inf"), ("a: !!timestamp 2024-01-01\n", "a: a value of type date"),
                        ("a: !!set {x}\n", "a: a value of type set"), ("a: &x [*x]\n", "a[0]: a recursive alias")):
        (tmp_path / "v.yaml").write_text(text)
        one_line_error(against("templates", "run", "feature-set", "--values", "v.yaml"), 2, "v.yaml: " + field)
    assert len(server.seen) == 1  # none of them was sent


def test_files_that_are_not_utf8_are_named(against, tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    one_line_error(against("templates", "run", "feature-set", "--values", "latin1.yaml"), 2, "latin1.yaml",
                   "not UTF-8")
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    sent = against("lineage", "send", "latin1.json")
    assert sent.returncode == 2 and "latin1.json: not UTF-8" in sent.stderr and "Traceback" not in sent.stderr


@pytest.mark.parametrize(("name", "value"), [("PLINTH_OUTPUT", "xml"), ("PLINTH_TIMEOUT", "abc"),
                                             ("PLINTH_TIMEOUT", "inf"), ("PLINTH_TIMEOUT", "nan"),
                                             ("PLINTH_TIMEOUT", "0"), ("PLINTH_RETRIES", "-1"),
                                             ("PLINTH_RETRIES", "2.5"), ("PLINTH_RETRIES", "many")])
def test_bad_plinth_variables_are_usage_errors_naming_them(against, name, value):
    one_line_error(against("whoami", env={name: value}), 2, f"{name}={value!r}")


@pytest.mark.parametrize("url", ["ftp://plinth.example.com", "plinth.example.com", "http://[::1", "http://"])
def test_a_url_that_is_not_an_http_address_is_a_usage_error_at_once(plinth, url):
    started = time.monotonic()
    one_line_error(plinth("whoami", env={"PLINTH_URL": url, "PLINTH_TOKEN": "t", "PLINTH_RETRIES": "4"}), 2,
                   "not an http:// or https:// address")
    assert time.monotonic() - started < 5  # no retries


def test_a_token_with_a_stray_cr_is_stripped_and_a_broken_one_never_shown(server, against):
    server.answer(200, {"username": "alice", "teams": []})
    assert against("whoami", env={"PLINTH_TOKEN": "plinth_abc_SECRET\r"}).returncode == 0
    assert server.received[-1][0]["Authorization"] == "Bearer plinth_abc_SECRET"
    broken = against("whoami", env={"PLINTH_TOKEN": "plinth_abc\r_SECRET", "PLINTH_RETRIES": "4"})
    line = one_line_error(broken, 2, "PLINTH_TOKEN")
    assert "SECRET" not in line and len(server.seen) == 1


@pytest.mark.parametrize("command", [("incidents", "list"), ("slos",), ("scorecards", "results", "s"),
                                     ("approvals", "list"), ("search", "q")])
def test_limit_0_is_all_and_a_negative_limit_is_a_usage_error(server, against, command):
    """Every listing's --limit: 0 means all (as `catalog list --limit 0`), below 0 is refused."""
    refused = against(*command, "--limit", "-1")
    assert refused.returncode == 2 and "-1" in refused.stderr and not server.seen
    server.answer(200, {"items": [{"id": 1}, {"id": 2}], "pageInfo": {"nextCursor": "c"}, "next": "c"})
    server.answer(200, {"items": [{"id": 3}], "pageInfo": {"nextCursor": None}, "next": None})
    listed = against("-o", "json", *command, "--limit", "0")
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [1, 2, 3]


def test_register_an_https_url_in_capitals_registers_the_url(server, against):
    server.answer(200, {"added": ["model:default/m"], "changed": [], "removed": [], "unchanged": 0, "errors": [],
                        "dryRun": True})
    done = against("catalog", "register", "HTTPS://git.example.com/acme/catalog-info.yaml", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert server.seen[-1][:2] == ("POST", "/api/v1/locations")
    assert json.loads(server.received[-1][1])["target"] == "https://git.example.com/acme/catalog-info.yaml"


def test_validate_offline_a_missing_or_unreadable_file_is_exit_2(plinth, tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"kind: caf\xe9\n")
    one_line_error(plinth("catalog", "validate", "missing.yaml"), 2, "missing.yaml")
    one_line_error(plinth("catalog", "validate", "latin1.yaml"), 2, "latin1.yaml")
