"""The request page's text made navigable: entity references in policy messages become links to the
entity, and a follow-up such as "(request grant-access)" becomes a link to that request's form."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from catalog.templatetags.catalog_tags import ref_url

register = template.Library()

REF = re.compile(r"\b([a-z][a-z0-9]*):([A-Za-z0-9][A-Za-z0-9._-]*)/([A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])")
FOLLOW_UP = re.compile(r"\(request ([a-z][a-z-]+)\)")


def follow_up_url(action: str, target: str) -> str:
    return reverse("governance:request-new") + "?" + urlencode({"action": action, "target": target})


@register.filter
def linked_refs(text: str) -> SafeString:
    """Escape the text; link each `kind:namespace/name` and each "(request <action>)" about the first
    reference of the message."""
    text = str(text or "")
    first = REF.search(text)
    out: list[str] = []
    pos = 0
    pattern = re.compile(f"{REF.pattern}|{FOLLOW_UP.pattern}")
    for match in pattern.finditer(text):
        out.append(escape(text[pos:match.start()]))
        if match.group(1):  # an entity reference
            out.append(format_html('<a href="{}"><code>{}</code></a>', ref_url(match.group(0)), match.group(0)))
        elif first is not None:  # a follow-up request about the message's entity
            url = follow_up_url(match.group(4), first.group(0))
            out.append(format_html('(<a href="{}">request {}</a>)', url, match.group(4)))
        else:
            out.append(escape(match.group(0)))
        pos = match.end()
    out.append(escape(text[pos:]))
    return mark_safe("".join(out))  # noqa: S308 (every piece escaped above)
