"""Scorecard fixtures: a scratch definitions folder (the shipped rules copied in) that a test may break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portal.scorecards import conf

SHIPPED = Path(conf.APP_DIR) / "definitions"


@pytest.fixture
def card_dir(tmp_path, settings):
    """A copy of the shipped definitions and rules, configured as PLINTH_SCORECARDS_DIR."""
    folder = tmp_path / "scorecards"
    shutil.copytree(SHIPPED, folder)
    settings.PLINTH_SCORECARDS_DIR = folder
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


MINI = """
name: mini
title: Mini
filter:
  kinds: [component]
levels: [Bronze, Silver, Gold]
checks:
  - id: owner
    level: Bronze
    rule: owner_team.rego
    reads: [owner.team]
    message: no owner team
  - id: described
    level: Silver
    rule: description.rego
    reads: [descriptor.description]
    message: no description
  - id: custom
    level: Gold
    rule: custom.rego
    reads: [lifecycle]
    message: custom fails
"""
