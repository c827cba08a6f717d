"""`{% useful_widget kind target path %}`: the "Was this useful?" form on docs pages and run pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.inclusion_tag("feedback/inc/useful.html", takes_context=True)
def useful_widget(context, kind: str, target, path: str = "") -> dict:
    from ..views import widget_context

    return {"fb": widget_context(context["request"], kind, str(target), path or ""), "request": context["request"]}
