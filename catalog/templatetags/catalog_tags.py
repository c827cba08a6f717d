import re

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from catalog.descriptors.kinds import kind_label as _kind_label
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


# Lineage nodes that are no catalog kind, named as the lineage legend names them.
GRAPH_NODES = {"job": ("Job", "Jobs"), "run": ("MLflow run", "MLflow runs"), "version": ("Model version", "Model versions")}


@register.filter
def kind_count(kind: str, count) -> str:
    """`{{ row.kind|kind_count:row.n }}`: "Dataset" for 1, "Datasets" for 5 (the kind table's plural;
    "APIs", "Feature sets"), lineage's own nodes by their legend's names."""
    try:
        n = int(count)
    except (TypeError, ValueError):
        n = 0
    if (kind or "").lower() in GRAPH_NODES:
        return GRAPH_NODES[kind.lower()][0 if n == 1 else 1]
    return _kind_label(kind, n)


@register.filter
def kind_name(kind: str) -> str:
    """`{{ e.kind|kind_name }}`: the kind's singular as pages write it, for badges and table cells —
    "Feature set" for `FeatureSet` or `featureset`, "API", "MLflow run" for lineage's `run`."""
    return kind_count(kind, 1)


SOFT_BREAK_AFTER = re.compile(r"([/.-])(?=.)")


@register.filter(needs_autoescape=True)
def soft_breaks(value, autoescape=True) -> str:
    """`mlflow.org/registered-model` escaped, with `<wbr>` after each '/', '.' and '-' (not a last
    one): a long key wraps at those points rather than mid-word (CSS breaks a segment only when it
    cannot fit at all)."""
    text = conditional_escape(value) if autoescape else str(value)
    return mark_safe(SOFT_BREAK_AFTER.sub(r"\1<wbr>", str(text)))  # noqa: S308 - escaped above; '<wbr>' is ours


@register.filter
def signed_percent(ratio) -> str:
    """0.0222 → "+2.2 %", -0.004 → "-0.4 %" (a relative difference, as the compare view shows it)."""
    if ratio is None:
        return ""
    value = ratio * 100
    return f"{value:+.1f} %" if abs(value) < 10 else f"{value:+.0f} %"
