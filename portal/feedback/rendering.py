"""Comments and answers are Markdown, rendered through the docs' sanitiser (Python-Markdown, then the
nh3 allow-list and URL policy of `portal.techdocs.rendering`): raw HTML, scripts, event handlers and
`javascript:`/`data:` URLs never reach the page; relative links and images resolve to nothing."""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe

from portal.techdocs import rendering


def render_comment(text: str) -> SafeString:
    if not text.strip():
        return mark_safe("")  # noqa: S308 (empty)
    return mark_safe(rendering.render_markdown(text, rendering.LinkPolicy()).html)  # noqa: S308 (sanitised by nh3)
