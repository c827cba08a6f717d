"""`plinth` as a process against the live server: output formats, exit codes, and bad input — one clear
line on stderr, the documented exit code, never a traceback (unless --debug)."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml

pytestmark = pytest.mark.django_db(transaction=True)


def one_line_error(result, code: int, *words: str) -> str:
    """The result failed with `code` and one `plinth: error:` line naming `words`, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("plinth: error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def as_alice(portal, plinth):
    env = {"PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token("alice")}
    return lambda *args, **kw: plinth(*args, env={**env, **kw.pop("env", {})}, **kw)


def test_login_stores_a_0600_profile_and_whoami_uses_it(portal, plinth, cli_env, tmp_path):
    token = portal.token("alice")
    login = plinth("login", "--url", portal.url, "--token-stdin", "--profile", "work", input=token + "\n")
    assert login.returncode == 0, login.stderr
    path = tmp_path / "config" / "plinth" / "config.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and token in path.read_text()
    who = plinth("-o", "json", "whoami")
    assert who.returncode == 0 and json.loads(who.stdout)["username"] == "alice"
    one_line_error(plinth("--profile", "nope", "whoami"), 2, "unknown profile 'nope'")
    refused = plinth("login", "--url", portal.url, "--token", "plt_wrong", "--profile", "bad")
    one_line_error(refused, 3, "plinth login")
    assert "bad" not in path.read_text()  # a refused token is not stored


def test_catalog_list_get_in_every_format(as_alice):
    table = as_alice("catalog", "list", "--kind", "model")
    assert table.returncode == 0 and "model:default/fraud-detector" in table.stdout
    assert "\x1b[" not in table.stdout  # no colour when stdout is not a terminal
    listed = json.loads(as_alice("-o", "json", "catalog", "list", "--kind", "model", "--limit", "0").stdout)
    assert {e["metadata"]["name"] for e in listed} >= {"fraud-detector", "churn-predictor"}
    got = yaml.safe_load(as_alice("-o", "yaml", "catalog", "get", "model:default/fraud-detector").stdout)
    assert got["kind"] == "Model" and got["metadata"]["name"] == "fraud-detector"
    assert "fraud-detector" in as_alice("search", "fraud", "--kind", "model").stdout


def test_exit_codes_for_missing_conflict_and_auth(as_alice, portal, plinth):
    one_line_error(as_alice("catalog", "get", "model:default/nope"), 4, "model:default/nope")
    bad = plinth("whoami", env={"PLINTH_URL": portal.url, "PLINTH_TOKEN": "plt_expired"})
    one_line_error(bad, 3, "token")
    request_id = as_alice("approvals", "request", "deprecate", "model:default/fraud-detector",
                          "--param", "reason=cli test").stdout.strip()
    assert as_alice("approvals", "withdraw", request_id).returncode == 0
    one_line_error(as_alice("approvals", "withdraw", request_id), 5, "withdrawn")
    one_line_error(plinth("whoami", env={"PLINTH_URL": portal.url}), 3)
    usage = as_alice("catalog", "get")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr and "Traceback" not in usage.stderr


def test_server_down_tls_non_json_and_debug(plinth, portal):
    one_line_error(plinth("whoami", env={"PLINTH_URL": "http://127.0.0.1:9", "PLINTH_TOKEN": "x"}), 6,
                   "cannot reach")
    tls = plinth("whoami", env={"PLINTH_URL": portal.url.replace("http://", "https://"), "PLINTH_TOKEN": "x"})
    one_line_error(tls, 6, "TLS")
    html = plinth("whoami", env={"PLINTH_URL": portal.url + "/catalog", "PLINTH_TOKEN": "x"})
    one_line_error(html, 6, "is the URL the portal's address?")  # a page, not the API
    debug = plinth("--debug", "whoami", env={"PLINTH_URL": "http://127.0.0.1:9", "PLINTH_TOKEN": "x"})
    assert debug.returncode == 6 and "Traceback" in debug.stderr


def test_no_url_at_all_is_a_usage_error(plinth):
    one_line_error(plinth("whoami"), 2, "plinth login")


def test_values_file_that_is_not_yaml_and_an_api_field_error(as_alice, tmp_path):
    bad = tmp_path / "values.yaml"
    bad.write_text("name: [unclosed\n")
    one_line_error(as_alice("templates", "run", "feature-set", "--values", str(bad), "--dry-run"), 2,
                   "values.yaml", "not valid YAML")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    one_line_error(as_alice("templates", "run", "feature-set", "--values", str(listing)), 2, "mapping")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: Not A Name\nowner: fraud-ml\nentityName: customer\njoinKey: customer_id\n")
    one_line_error(as_alice("templates", "run", "feature-set", "--values", str(wrong), "--dry-run"), 2,
                   "name:")


def test_validate_offline_without_a_server(plinth, tmp_path):
    good = tmp_path / "catalog-info.yaml"
    good.write_text("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\n"
                    "spec: {type: classifier, lifecycle: production, owner: fraud-ml}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: c\nspec:\n"
                   "  type: service\n  lifecycle: production\n")
    assert plinth("catalog", "validate", str(good)).returncode == 0  # no PLINTH_URL: offline
    result = plinth("catalog", "validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"{bad}:5: spec.owner: owner is required" in result.stdout
    as_json = json.loads(plinth("-o", "json", "catalog", "validate", str(bad)).stdout)
    assert as_json[0]["valid"] is False and as_json[0]["problems"][0]["field"] == "spec.owner"


def test_register_a_local_folder_and_refresh(as_alice, tmp_path):
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "catalog-info.yaml").write_text(
        "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: cli-folder-model\n"
        "  description:\n    $text: ./README.md\nspec: {type: classifier, lifecycle: experimental, owner: fraud-ml}\n")
    (repo / "models" / "README.md").write_text("Registered from a folder.")
    dry = as_alice("catalog", "register", str(repo), "--source", "cli-test", "--dry-run")
    assert dry.returncode == 0 and "model:default/cli-folder-model" in dry.stdout, dry.stderr
    done = as_alice("catalog", "register", str(repo), "--source", "cli-test")
    assert done.returncode == 0 and "added" in done.stdout
    got = json.loads(as_alice("-o", "json", "catalog", "get", "model:cli-folder-model").stdout)
    assert got["metadata"]["description"] == "Registered from a folder."
    assert as_alice("catalog", "refresh", "model:default/cli-folder-model").returncode == 0
    one_line_error(as_alice("catalog", "register", str(tmp_path / "missing")), 2, "no such file")


def test_delete_an_orphan(as_alice, tmp_path, settings):
    """An upload sent again without one of its models leaves it as an orphan (the `keep` strategy);
    `plinth catalog delete-orphan` deletes it, and refuses, in one line each, a non-orphan (409: exit 5)
    and what is gone (404: exit 4)."""
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    repo = tmp_path / "repo"
    repo.mkdir()
    model = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {{name: {}}}\n"
             "spec: {{type: classifier, lifecycle: experimental, owner: fraud-ml}}\n")
    (repo / "catalog-info.yaml").write_text(model.format("cli-leaving") + "---\n" + model.format("cli-staying"))
    assert as_alice("catalog", "register", str(repo), "--source", "cli-orphans").returncode == 0
    (repo / "catalog-info.yaml").write_text(model.format("cli-staying"))
    assert as_alice("catalog", "register", str(repo), "--source", "cli-orphans").returncode == 0
    got = json.loads(as_alice("-o", "json", "catalog", "get", "model:cli-leaving").stdout)
    assert got["status"]["orphan"] is True, got["status"]
    one_line_error(as_alice("catalog", "delete-orphan", "model:default/cli-staying"), 5, "not an orphan")
    done = as_alice("catalog", "delete-orphan", "model:default/cli-leaving")
    assert done.returncode == 0 and "deleted the orphan" in done.stderr, done.stderr
    one_line_error(as_alice("catalog", "delete-orphan", "model:default/cli-leaving"), 4, "cli-leaving")


def test_completion_script(plinth):
    result = plinth("completion", "bash")
    assert result.returncode == 0 and "_PLINTH_COMPLETE" in result.stdout


def test_docs_open_prints_the_address_of_built_docs(as_alice, portal):
    from catalog.models import Entity
    from portal.techdocs import services

    one_line_error(as_alice("docs", "open", "component:default/plinth-sdk", "--print"), 4, "No docs")
    services.docs_build(entity=Entity.objects.get(ref="component:default/plinth-sdk"), force=True)
    opened = as_alice("docs", "open", "component:default/plinth-sdk", "--print")
    assert opened.returncode == 0 and opened.stdout.strip() == f"{portal.url}/docs/component/default/plinth-sdk/"


def test_a_server_error_and_a_non_json_answer_are_one_line_exit_6(plinth):
    from tests.sdk.test_transport import Scripted

    server = Scripted()
    try:
        server.answer(500, {"error": {"status": 500, "message": "Server error."}}, {"X-Request-ID": "req-9"})
        failed = one_line_error(plinth("whoami", env={"PLINTH_URL": server.url, "PLINTH_TOKEN": "t"}), 6,
                                "HTTP 500", "req-9")
        assert "Server error." in failed
        server.answer(200, "<html>proxy</html>", {"Content-Type": "text/html"})
        one_line_error(plinth("whoami", env={"PLINTH_URL": server.url, "PLINTH_TOKEN": "t"}), 6, "not JSON")
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_tokens_create_prints_only_the_secret_and_revoke_ends_it(as_alice, portal, plinth):
    created = as_alice("tokens", "create", "cli token", "--expires-in-days", "30")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("plinth_") and "\n" not in secret  # stdout: the secret alone
    listed = json.loads(as_alice("-o", "json", "tokens", "list").stdout)
    token = next(t for t in listed if t["name"] == "cli token")
    assert "secret" not in token and token["active"]
    assert "cli token" in as_alice("tokens", "list").stdout
    assert as_alice("tokens", "revoke", str(token["id"])).returncode == 0
    one_line_error(plinth("whoami", env={"PLINTH_URL": portal.url, "PLINTH_TOKEN": secret}), 3)
    one_line_error(as_alice("tokens", "revoke", "987654"), 4, "token")
    usage = as_alice("tokens", "create", "x", "--expires-in-days", "3")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_login_creates_the_profile_plinth_profile_names(portal, plinth, tmp_path):
    """PLINTH_PROFILE=staging before the profile exists: `plinth login --profile staging` creates it."""
    token = portal.token("alice")
    env = {"PLINTH_PROFILE": "staging"}
    login = plinth("login", "--profile", "staging", "--url", portal.url + "/", "--token-stdin", env=env,
                   input=token + "\r\n")
    assert login.returncode == 0, login.stderr
    who = plinth("-o", "json", "whoami", env=env)
    assert who.returncode == 0 and json.loads(who.stdout)["username"] == "alice", who.stderr
    config = (tmp_path / "config" / "plinth" / "config.toml").read_text()
    assert f'url = "{portal.url}"' in config and f'token = "{token}"' in config


def test_register_a_symlinked_descriptor_inside_a_git_repository(as_alice, tmp_path):
    """The link is named as it is in the repository (its target lies outside): the upload's source is
    the remote and that path."""
    import subprocess

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "catalog-info.yaml").write_text(
        "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: cli-linked-model\n"
        "spec: {type: classifier, lifecycle: experimental, owner: fraud-ml}\n")
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "git@github.com:acme/linked.git"], check=True)
    (repo / "models" / "catalog-info.yaml").symlink_to(elsewhere / "catalog-info.yaml")
    done = as_alice("-o", "json", "catalog", "register", str(repo / "models" / "catalog-info.yaml"), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == ["model:default/cli-linked-model"]
    from plinth_sdk.cli.catalog import default_source

    assert default_source(repo / "models" / "catalog-info.yaml") == "github.com/acme/linked/models/catalog-info.yaml"
