"""Markdown shown as one line of plain text (`portal.core.markdown_text.plain`, the `|markdown_plain`
filter): the reader's text without the marks, escaped by the template, quick on hostile input."""

import time

import pytest
from django.template import engines

from portal.core.markdown_text import plain


@pytest.mark.parametrize("text, shown", [
    ("Use `plinth login` first", "Use plinth login first"),
    ("**bold**, __strong__, *em* and _em_", "bold, strong, em and em"),
    ("see [the guide](https://x/g) or ![a chart](c.png)", "see the guide or a chart"),
    ("**`nested`**", "nested"),
    ("snake_case_name, 2*3*4 and a * b", "snake_case_name, 2*3*4 and a * b"),
    ("two\n\nparagraphs  spaced", "two paragraphs spaced"),
    ("", ""),
])
def test_marks_come_off_and_the_rest_stays(text, shown):
    assert plain(text) == shown


def test_the_filter_escapes_and_bounds_its_input():
    template = engines["django"].from_string("{{ value|markdown_plain|truncatechars:40 }}")
    assert template.render({"value": "**<script>alert(1)</script>**"}) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert template.render({"value": None}) == ""
    started = time.process_time()
    template.render({"value": "*a _b `c [d " * 20_000})  # unmatched marks, 240,000 characters
    assert time.process_time() - started < 0.5
