from django import template
from django.urls import reverse

from catalog.descriptors.relations import relation_label as _relation_label

register = template.Library()


@register.filter
def ref_url(ref: str) -> str:
    """'system:default/foo' → the entity page URL (whether or not it exists)."""
    try:
        kind, rest = ref.split(":", 1)
        namespace, name = rest.split("/", 1)
    except ValueError:
        return ""
    return reverse("catalog:entity-detail", args=[kind, namespace, name])


@register.filter
def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1] if ref else ""


@register.filter
def relation_label(relation_type: str) -> str:
    """`consumesFeatures` → "Consumes features"."""
    return _relation_label(relation_type or "")


@register.filter
def signed_percent(ratio) -> str:
    """0.0222 → "+2.2 %", -0.004 → "-0.4 %" (a relative difference, as the compare view shows it)."""
    if ratio is None:
        return ""
    value = ratio * 100
    return f"{value:+.1f} %" if abs(value) < 10 else f"{value:+.0f} %"
