import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "compat" / "backstage"


@pytest.fixture
def backstage_examples() -> Path:
    path = SHARED / "examples"
    if not path.is_dir():
        pytest.skip(f"Backstage compatibility corpus not found at {path} (../shared/compat/backstage)")
    return path


@pytest.fixture
def write_tree(tmp_path, settings):
    """Write {relative path: text} under a folder the catalog may read; returns the folder."""
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]

    def write(files: dict[str, str | bytes], folder: str = "repo") -> Path:
        root = tmp_path / folder
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return root

    os.environ.setdefault("PLINTH_TEST", "1")
    return write
