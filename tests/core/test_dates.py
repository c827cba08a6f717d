"""One way to show a moment (portal/core/templatetags/plinth.py): `|when` — "just now", "3 hours ago" with the
exact UTC time on hover. A page that formats a moment with `|timesince` instead said "0 minutes ago" where
every other page says "just now"."""

import datetime as dt
import re
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from portal.core.templatetags.plinth import when

ROOT = Path(settings.BASE_DIR)
RELATIVE_BY_HAND = re.compile(r"\|\s*(timesince|timeuntil)\b")


def test_no_template_shows_a_relative_time_but_through_when():
    templates = [p for p in ROOT.rglob("*.html") if ".venv" not in p.parts and "node_modules" not in p.parts
                 and "test-artifacts" not in p.parts and "site-packages" not in p.parts]
    assert len(templates) > 100, "the templates were not found"
    found = [f"{p.relative_to(ROOT)}:{n}" for p in templates
             for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if RELATIVE_BY_HAND.search(line)]
    assert not found, f"use |when for relative times: {found}"


def test_a_moment_under_a_minute_ago_is_just_now():
    now = timezone.now()
    assert ">just now</time>" in when(now - dt.timedelta(seconds=5))
    assert ">3\xa0hours ago</time>" in when(now - dt.timedelta(hours=3, minutes=1))
