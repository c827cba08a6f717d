from pathlib import Path

import pytest

from tests.factories import write_files

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
        return write_files(tmp_path / folder, files)

    return write
