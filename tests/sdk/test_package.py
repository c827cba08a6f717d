"""`plinth-sdk` is a package of its own: it builds into a wheel carrying the schemas and the `plinth`
entry point, declares only client dependencies, and never imports Django."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_has_its_data_entry_point_and_no_django(tmp_path):
    source = tmp_path / "sdk"  # a copy: building writes build/ next to the sources
    shutil.copytree(ROOT / "sdk", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True, timeout=240)
    wheel = next(tmp_path.glob("plinth_sdk-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("METADATA"))
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "plinth_sdk/schemas/Model.schema.json" in names and "plinth_sdk/schemas/kinds.json" in names
    assert "plinth = plinth_sdk.cli.main:main" in entry_points
    requires = {line.split(":", 1)[1].strip().split("<")[0].split(">")[0].lower()
                for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    assert requires == {"httpx", "click", "rich", "pyyaml", "jsonschema"}


def test_every_module_imports_without_django():
    modules = ["plinth_sdk", "plinth_sdk.client", "plinth_sdk.resources", "plinth_sdk.validate",
               "plinth_sdk.cli.main", "plinth_sdk.cli.catalog", "plinth_sdk.cli.approvals",
               "plinth_sdk.cli.templates", "plinth_sdk.cli.account", "plinth_sdk._docgen"]
    code = ("import sys; sys.modules['django'] = None; sys.modules['portal'] = None; sys.modules['catalog'] = None\n"
            + "".join(f"import {m}\n" for m in modules)
            + "from plinth_sdk.validate import validate_text\n"
              "assert validate_text('kind: Nope\\n', 'x').problems\n"
              "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules if sys.modules[m])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_help_imports_neither_httpx_nor_rich():
    """`plinth --help` stays cheap: the HTTP client and Rich load only when a command needs them."""
    code = ("import sys; sys.argv = ['plinth', '--help']\nfrom plinth_sdk.cli.main import main\n"
            "try:\n    main()\nfinally:\n"
            "    print(sorted(m for m in ('httpx', 'rich', 'yaml', 'jsonschema') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("[]"), result.stdout
