"""The cost parts of entity pages: a "Cost" tab and the latest month's cost in the header (one query)."""

from __future__ import annotations

from catalog import extensions

KINDS = {"model", "component", "pipeline", "dataset", "featureset", "resource", "system", "api"}


def _tab(request, entity) -> dict:
    from . import roi, selectors, usage

    rows = selectors.entity_months(entity)
    months = [r["month"] for r in rows]
    annotations = entity.metadata.get("annotations")
    predictions = usage.monthly_predictions(annotations, months)
    value = roi.declared_value(annotations) if entity.kind_key == "model" else None
    runs = selectors.training_runs(entity, months) if entity.kind_key == "model" else {}
    for row in rows:
        row["runs"] = runs.get(row["month"], 0)
        row["per_run"] = row["effective"] / row["runs"] if row["runs"] else None
        row["ratio"] = roi.ratio(value, row["effective"]) if value and value.currency == row["currency"] else None
        row["predictions"] = predictions.counts.get(row["month"])
        row["per_1k"] = predictions.per_thousand(row["month"], row["effective"])
    from portal.insights import charts

    chart = None
    if rows:
        currency = (value.currency if value and value.ok and any(r["currency"] == value.currency for r in rows)
                    else rows[0]["currency"])
        series = [(r["month"].strftime("%Y-%m"), float(r["effective"])) for r in reversed(rows)
                  if r["currency"] == currency]
        chart = charts.line_chart("entity-cost", f"Monthly cost ({currency})", series, unit=currency)
    return {"cost_rows": rows, "value": value, "cost_chart": chart, "predictions": predictions}


def _badge(request, entity) -> dict:
    from . import roi, selectors

    costs = selectors.entity_header(entity)
    out = {"costs": costs, "entity": entity}
    if entity.kind_key == "model":  # value vs cost beside it (the annotations are on the row: no query)
        value = roi.declared_value(entity.annotations)
        if value.ok:
            cost = next((m.amount for m in costs if m.currency == value.currency), None)
            out |= {"value": value, "ratio": roi.ratio(value, cost)}
    return out


def register() -> None:
    extensions.register_tab(
        extensions.EntityTab(key="cost", label="Cost", template="costs/inc/entity_tab.html",
                             applies=lambda entity: entity.kind_key in KINDS, context=_tab, order=88)
    )
    extensions.register_panel(
        extensions.EntityPanel(template="costs/inc/badge.html", where="actions",
                               applies=lambda entity: entity.kind_key in KINDS, context=_badge)
    )
