"""The house's floors, read from the code's own imports (every `import`, also those inside functions):
the lower layers never import the apps built on them, and services never import the tasks that call
them. docs/architecture.md names the layers; a new arrow back up fails here with its file and line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = {"catalog"} | {f"portal.{p.name}" for p in (ROOT / "portal").iterdir()
                      if (p / "apps.py").exists()}
# What each lower layer may import of the project (anything outside the project is free).
MAY_IMPORT = {
    "portal.core": {"portal.core", "portal.settings", "portal.celery"},
    "portal.accounts": {"portal.accounts", "portal.core", "portal.settings", "portal.celery"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative imports made absolute."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


OWNERS = sorted(APPS | {"portal.settings", "portal.celery", "portal.urls"}, key=len, reverse=True)  # longest first


def _owner(module: str) -> str | None:
    for app in OWNERS:
        if module == app or module.startswith(app + "."):
            return app
    return None


def _source_files(folder: str):
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def test_the_layers_are_known():
    assert {"catalog", "portal.core", "portal.accounts", "portal.site", "portal.search"} <= APPS


def test_core_and_accounts_import_no_app_above_them():
    wrong = []
    for layer, allowed in MAY_IMPORT.items():
        for path in _source_files(layer.replace(".", "/")):
            for line, module in _imports(path):
                owner = _owner(module)
                if owner is not None and owner not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_nothing_but_the_url_map_imports_the_site():
    """portal/site composes every app (home page, demo, dev stack, load test): nothing may rest on it."""
    wrong = []
    for folder in ("portal", "catalog"):
        for path in _source_files(folder):
            if path.is_relative_to(ROOT / "portal" / "site") or path == ROOT / "portal" / "urls.py":
                continue
            wrong += [f"{path.relative_to(ROOT)}:{line} imports {module}"
                      for line, module in _imports(path) if _owner(module) == "portal.site"]
    assert not wrong, "\n".join(wrong)


def test_services_and_selectors_never_import_tasks():
    """Tasks call services; a service queues a task by its registered name (as the governance outbox
    does), so the two never import each other in a loop."""
    wrong = []
    for folder in ("portal", "catalog"):
        for path in _source_files(folder):
            if path.name not in ("services.py", "selectors.py"):
                continue
            wrong += [f"{path.relative_to(ROOT)}:{line} imports {module}"
                      for line, module in _imports(path) if module.split(".")[-1] == "tasks"
                      or ".tasks." in module]
    assert not wrong, "\n".join(wrong)


def test_tasks_sent_by_name_are_registered_under_that_name():
    from portal.celery import app
    from portal.scaffolder import services as scaffolder_services
    from portal.techdocs import receivers as techdocs_receivers

    app.loader.import_default_modules()
    for name in (scaffolder_services.EXECUTE_RUN_TASK, techdocs_receivers.BUILD_TASK):
        assert name in app.tasks, name


def test_the_checker_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    """The rule reads nested and relative imports, or it could pass while an arrow runs back up."""
    package = tmp_path / "portal" / "core"
    package.mkdir(parents=True)
    (package / "x.py").write_text("def f():\n    from catalog import services\n    from ..accounts import models\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    found = _imports(package / "x.py")
    assert (2, "catalog.services") in found
    assert (3, "portal.accounts.models") in found


def test_the_search_app_imports_nothing_of_the_catalog():
    """The catalog feeds search through `registry.register` in its own `search.py`; search itself (its
    benchmarks and the `search` command live in portal/site) never imports the catalog."""
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in _source_files("portal/search")
             for line, module in _imports(path) if _owner(module) == "catalog"]
    assert not wrong, "\n".join(wrong)
