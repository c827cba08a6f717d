"""The build's rendering budget (builder.RENDER_SECONDS) is checked between pages, so one big page could
run far past it. A page whose size, at the bytes per second this build has rendered so far, needs more
than the budget left is not started: it is stored with an error naming the estimate, and smaller pages
after it that fit are still rendered."""

from __future__ import annotations

import time

from portal.techdocs import builder, rendering

PARAGRAPH = "Some *text* with a [link](a.md) and `code`, and more words to read.\n\n"


def _timed_render(text: str) -> float:
    started = time.monotonic()
    rendering.render_markdown(text, rendering.LinkPolicy())
    return time.monotonic() - started


def _build(tmp_path, files: dict[str, str]) -> builder.SiteBuild:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text)
    return builder.SiteBuilder(str(docs), base_url="/docs/x/", limit_root=str(tmp_path)).build()


def test_a_page_too_big_for_the_budget_left_is_not_started(tmp_path, monkeypatch):
    first = PARAGRAPH * 2_000  # 150 kB: this build's speed
    big = PARAGRAPH * 10_000  # 5 times as long: about 5 times as slow
    # The budget is 3 times the first page's time: the big page would end at about 6 of its 3.
    monkeypatch.setattr(builder, "RENDER_SECONDS", 3 * _timed_render(first))
    started = time.monotonic()
    site = _build(tmp_path, {"a.md": first, "m-big.md": big, "z.md": "# Small\n\nStill rendered.\n"})
    took = time.monotonic() - started
    pages = {p.source_path: p for p in site.pages}
    assert pages["a.md"].html and not pages["a.md"].error
    assert not pages["m-big.md"].html
    assert pages["m-big.md"].error.startswith("Not rendered: at this build's speed so far (")
    assert "KiB page would take about" in pages["m-big.md"].error
    assert [e["path"] for e in site.errors if "rendering budget" in e["message"]] == ["m-big.md"]
    assert "Still rendered." in pages["z.md"].html  # a page that fits after it is rendered
    assert took < 2 * builder.RENDER_SECONDS + 1


def test_pages_that_fit_are_all_rendered(tmp_path, monkeypatch):
    """The estimate only skips what cannot finish: with the usual budget a big page renders."""
    site = _build(tmp_path, {"a.md": PARAGRAPH * 2_000, "m-big.md": PARAGRAPH * 10_000})
    assert all(p.html and not p.error for p in site.pages)
    assert not site.errors
