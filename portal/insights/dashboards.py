"""What each Insights dashboard shows: selectors in, charts and tables out.

A builder takes the filters, the team scope the selectors read (None: the organisation) and the teams
the viewer may choose, and returns the template context: `charts` (geometry from charts.py), the
dashboard's numbers, and `tables` — (name, headers, rows) — which are both the page's data tables and
its CSV download, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from portal.techdocs import selectors as techdocs_selectors
from portal.techdocs.models import docs_url

from . import charts, selectors
from .filters import Filters, Period

TOP = 10
PER = {"daily": "day", "weekly": "week", "monthly": "month"}


def _label(day: date, grouping: str) -> str:
    if grouping == "monthly":
        return day.strftime("%b %Y")
    if grouping == "weekly":
        return "wk " + day.strftime("%d %b")
    return day.strftime("%d %b")


def _trend_text(trend: float | None) -> str:
    if trend is None:
        return "new"
    return "±0%" if trend == 0 else f"{trend:+g}%"


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} h"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 60:.1f} min" if value >= 90 else f"{value:.0f} s"


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100, 1)


def _series(period: Period, grouping: str, rows: list[dict], key: str) -> list[tuple[date, int]]:
    """A selector's rows ({"date": "YYYY-MM-DD", key: n}, buckets with data only) on every bucket."""
    by_date = {r["date"][:10]: r[key] for r in rows}
    return [(b, by_date.get(b.isoformat(), 0)) for b in period.buckets(grouping)]


def _day(value: str | None) -> str:
    return value[:10] if value else ""


# -- the dashboards ------------------------------------------------------------------------------


def active_users(f: Filters, scope: list[int] | None, *, per_team: bool = True, **_) -> dict:
    """The active-users board; the overview asks without the per-team bars (it shows only the line),
    which spares it the board's most expensive query."""
    p, before = f.period, f.period.previous
    # Who was active when, read once: the totals, WAU/MAU, trend and the per-team bars share it.
    activity = selectors.user_activity(p.start, p.end, team=scope)
    now = selectors.active_users(p.start, p.end, f.grouping, team=scope, activity=activity)
    was = selectors.active_users_series(before.start, before.end, f.grouping, team=scope)
    per_team = selectors.active_users_per_team(p.start, p.end, team=scope, activity=activity) if per_team else []
    series = _series(p, f.grouping, now.data, "total_users")
    previous = _series(before, f.grouping, was, "total_users")
    new = dict(_series(p, f.grouping, now.data, "new_users"))
    line = charts.line_chart("active-users", f"Active users per {PER[f.grouping]}, against the previous period",
                             [(_label(b, f.grouping), n) for b, n in series], unit="users",
                             previous=[n for _, n in previous])
    bars = charts.bar_chart("active-teams", "Active users per team",
                            [(t["team"], t["users"], f"{t['users']} ({_trend_text(t['trend_pct'])})")
                             for t in per_team[:15]], unit="users", headers=["Team", "Users (trend)"])
    return {
        "au": now, "per_team": per_team, "per": PER[f.grouping], "charts": [line, bars],
        "tables": [
            ("active users", ["period", "users", "new users", "previous period"],
             [[b.isoformat(), n, new.get(b) or 0, previous[i][1] if i < len(previous) else None]
              for i, (b, n) in enumerate(series)]),
            ("active users per team", ["team", "users", "previous period", "trend %"],
             [[t["team"], t["users"], t["previous"], t["trend_pct"]] for t in per_team]),
        ],
    }


def funnel(f: Filters, scope: list[int] | None, *, teams: list, **_) -> dict:
    # Every team by id (not None), so that the selector also lists each team's steps for admins.
    ids = scope if scope is not None else [t.pk for t in teams]
    fn = selectors.funnel(team=ids, start=f.period.start, end=f.period.end)
    chart = charts.funnel_chart("funnel", "Onboarding funnel: teams that reached each step and every one before it",
                                [("All teams", fn.teams, 0)]  # so each step's share is of every team
                                + [(s["label"], s["in_order"], s["teams"] - s["in_order"]) for s in fn.steps],
                                unit="teams")
    order = [s["milestone"] for s in fn.steps]
    rows = [{"team": t["team"], "joined": _day(t["started_at"]), "steps": [_day(t[m]) for m in order]}
            for t in fn.per_team]
    return {
        "funnel": fn, "step_labels": [s["label"] for s in fn.steps], "team_rows": rows, "charts": [chart],
        "tables": [
            ("funnel", ["step", "teams", "share %", "teams through every earlier step"],
             [[s["label"], s["teams"], _percent(s["share"]), s["in_order"]] for s in fn.steps]),
            ("teams", ["team", "started", *[s["label"] for s in fn.steps]],
             [[r["team"], r["joined"], *r["steps"]] for r in rows]),
            ("time to first registered model", ["teams joined", "with a model", "median days", "p95 days"],
             [[fn.time_to_first_model.get("teams_joined"), fn.time_to_first_model.get("teams"),
               fn.time_to_first_model.get("median_days"), fn.time_to_first_model.get("p95_days")]]),
        ],
    }


def _templates(f: Filters, scope: list[int] | None, limit: int) -> list[dict]:
    rows = selectors.top_templates(f.period.start, f.period.end, team=scope, limit=limit)
    for t in rows:
        t["success_pct"] = _percent(t["success_rate"])
        t["median_shown"] = _seconds(t["median_duration_s"])
    return rows


def _entity_label(readable: selectors.Readable, ref: str) -> tuple[str, str]:
    """(label, link) of an entity or template in a top list: its title and page when the entity exists,
    else (a platform admin's list: an entity deleted since) the ref as recorded, without a link."""
    entity = readable.entities.get(ref)
    return (entity.title or entity.name, entity.get_absolute_url()) if entity else (ref, "")


def _docs_label(readable: selectors.Readable, pages: set[tuple[int, str]], doc: dict) -> tuple[str, str]:
    """(label, link) of a docs page in a top list: "<entity title> › <page>" while the entity exists,
    else the path as recorded; linked only while the page exists (`pages`: techdocs' existing_pages),
    since a page viewed last month may have been removed or renamed since."""
    entity = readable.entities.get(doc["entityref"])
    if entity is None:
        return doc["path"], ""
    label = f"{entity.title or entity.name} › {doc['page'] or 'home'}"
    return label, docs_url(entity, doc["page"]) if (entity.pk, doc["page"]) in pages else ""


def _not_shown_table(not_shown: dict[str, int]) -> list[tuple[str, list[str], list[list]]]:
    """The CSV's account of the rows left out (refs the reader may not see): a section only when some
    were, as the page says it only then."""
    rows = [[name, n] for name, n in not_shown.items() if n]
    return [("not shown", ["list", "rows not shown"], rows)] if rows else []


def usage(f: Filters, scope: list[int] | None, *, user=None, **_) -> dict:
    """Top templates, entities and docs pages. A rollup row is kept under the team the event was
    recorded for, which is not always the owner of what it names (a run is recorded under the run's
    team, whoever owns the template): a ref the reader may not see is left out and counted, in the
    charts, the tables and the CSV alike."""
    templates = _templates(f, scope, TOP)
    entities = selectors.top_entities(f.period.start, f.period.end, team=scope, limit=TOP)
    docs = selectors.top_docs(f.period.start, f.period.end, team=scope, limit=TOP)
    readable = selectors.readable_refs(
        [t["entityref"] for t in templates] + [e["entityref"] for e in entities] + [d["entityref"] for d in docs], user)
    (templates, hidden_templates), (entities, hidden_entities), (docs, hidden_docs) = (
        readable.only(templates), readable.only(entities), readable.only(docs))
    not_shown = {"templates": hidden_templates, "entities": hidden_entities, "docs": hidden_docs}
    pages = techdocs_selectors.existing_pages(
        (readable.entities[d["entityref"]].pk, d["page"]) for d in docs if d["entityref"] in readable.entities)
    return {
        "templates": templates, "entities": entities, "docs": docs, "not_shown": not_shown,
        "charts": [
            charts.bar_chart("templates", "Top templates by runs",
                             [(*_entity_label(readable, t["entityref"]), t["count"], f"{t['count']} runs")
                              for t in templates], unit="runs"),
            charts.bar_chart("entities", "Top entities by page views",
                             [(*_entity_label(readable, e["entityref"]), e["count"], f"{e['count']} views")
                              for e in entities], unit="views"),
            charts.bar_chart("docs", "Top docs pages by views",
                             [(*_docs_label(readable, pages, d), d["count"], f"{d['count']} views") for d in docs],
                             unit="views"),
        ],
        "tables": [
            ("templates", ["template", "runs", "succeeded", "failed", "cancelled", "success rate %",
                           "median duration s"],
             [[t["entityref"], t["count"], t["succeeded"], t["failed"], t["cancelled"], t["success_pct"],
               t["median_duration_s"]] for t in templates]),
            ("entities", ["entity", "views", "user-days"], [[e["entityref"], e["count"], e["user_days"]] for e in entities]),
            ("docs", ["entity", "page", "views", "user-days"],
             [[d["entityref"], d["page"], d["count"], d["user_days"]] for d in docs]),
            *_not_shown_table(not_shown),
        ],
    }


def searches(f: Filters, scope: list[int] | None, **_) -> dict:
    p = f.period
    top = selectors.top_searches(p.start, p.end, team=scope, limit=TOP)
    zero = selectors.zero_result_searches(p.start, p.end, team=scope, limit=TOP)
    volume = _series(p, f.grouping, selectors.search_volume(p.start, p.end, f.grouping, team=scope), "count")
    return {
        "top": top, "zero": zero, "total": sum(n for _, n in volume),
        "charts": [
            charts.line_chart("search-volume", f"Searches per {PER[f.grouping]}",
                              [(_label(b, f.grouping), n) for b, n in volume], unit="searches"),
            charts.bar_chart("top-searches", "Top searches",
                             [(r["query"], r["count"], f"{r['count']} searches") for r in top], unit="searches"),
            charts.bar_chart("zero-searches", "Searches that found nothing",
                             [(r["query"], r["count"], f"{r['count']} searches") for r in zero], unit="searches"),
        ],
        "tables": [
            ("searches per period", ["period", "searches"], [[b.isoformat(), n] for b, n in volume]),
            ("top searches", ["query", "searches", "with no result", "clicks", "mean results", "mean clicked rank"],
             [[r["query"], r["count"], r["zero_result_count"], r["clicks"], r["mean_results"], r["mean_clicked_rank"]]
              for r in top]),
            ("zero-result searches", ["query", "searches"], [[r["query"], r["count"]] for r in zero]),
        ],
    }


def governance(f: Filters, scope: list[int] | None, **_) -> dict:
    g = selectors.governance_flow(f.period.start, f.period.end, team=scope)
    sla = {r["workflow"]: r for r in g["sla"]}
    workflows = [{**w, **{k: sla.get(w["workflow"], {}).get(k, 0) for k in ("submitted", "escalated", "expired")}}
                 for w in g["workflows"]]
    workflows += [{"workflow": name, "count": 0, "p50_hours": None, "p95_hours": None, **r}
                  for name, r in sla.items() if name not in {w["workflow"] for w in g["workflows"]}]
    return {
        "workflows": workflows, "stages": g["stages"], "gates": g["blocked_by_gate"],
        "decided": sum(w["count"] for w in g["workflows"]),
        "breaches": sum(r["escalated"] + r["expired"] for r in g["sla"]),
        "charts": [
            charts.bar_chart("lead-time", "Approval lead time per workflow stage (bar: p95)",
                             [(f"{s['workflow']} · {s['stage']}", s["p95_hours"] or 0,
                               f"p50 {_hours(s['p50_hours'])} · p95 {_hours(s['p95_hours'])}") for s in g["stages"]],
                             unit="hours", headers=["Workflow · stage", "Lead time"]),
            charts.bar_chart("gates", "Requests blocked per gate",
                             [(r["gate"], r["count"], f"{r['count']} blocked") for r in g["blocked_by_gate"]],
                             unit="requests"),
        ],
        "tables": [
            ("workflows", ["workflow", "closed", "p50 hours", "p95 hours", "submitted", "escalated (SLA)", "expired"],
             [[w["workflow"], w["count"], w["p50_hours"], w["p95_hours"], w["submitted"], w["escalated"], w["expired"]]
              for w in workflows]),
            ("stages", ["workflow", "stage", "completed", "p50 hours", "p95 hours"],
             [[s["workflow"], s["stage"], s["count"], s["p50_hours"], s["p95_hours"]] for s in g["stages"]]),
            ("gates", ["gate", "blocked"], [[r["gate"], r["count"]] for r in g["blocked_by_gate"]]),
        ],
    }


def _gaps(t: dict) -> int:
    return t["without_docs"] + t["models_without_card"] + t["models_without_recent_run"]


def catalog_health(f: Filters, scope: list[int] | None, **_) -> dict:
    rows = selectors.catalog_health(team=scope)
    owned = [r for r in rows if r["team"] is not None]
    unowned = next((r["entities"] for r in rows if r["team"] is None), 0) if scope is None else None
    worst = sorted(owned, key=lambda t: (-_gaps(t), t["team"]))
    return {
        "teams": owned, "unowned": unowned, "recent_days": 30,
        "charts": [
            charts.bar_chart("health", "Gaps per team: entities without docs, models without a card or a recent run",
                             [(t["team"], _gaps(t), f"{t['without_docs']} no docs · {t['models_without_card']} no card · "
                               f"{t['models_without_recent_run']} stale") for t in worst[:15] if _gaps(t)],
                             unit="gaps", headers=["Team", "Gaps"]),
        ],
        "tables": [
            ("catalog health", ["team", "entities", "without docs", "models", "without model card",
                                "without MLflow version in 30 days"],
             [[t["team"], t["entities"], t["without_docs"], t["models"], t["models_without_card"],
               t["models_without_recent_run"]] for t in owned]
             + ([["(no owner)", unowned, "", "", "", ""]] if unowned is not None else [])),
        ],
    }


def overview(f: Filters, scope: list[int] | None, *, teams: list, user=None, **_) -> dict:
    au = active_users(f, scope, per_team=False)
    fn = funnel(f, scope, teams=teams)
    templates = _templates(f, scope, 5)
    # The run's team recorded the run, not the template's owner: leave out what the reader may not see.
    top, hidden = selectors.readable_refs([t["entityref"] for t in templates], user, titles=False).only(templates)
    s = selectors.top_searches(f.period.start, f.period.end, team=scope, limit=5)
    g = governance(f, scope)
    searched = sum(r["count"] for r in selectors.search_volume(f.period.start, f.period.end, "monthly", team=scope))
    return {
        "au": au["au"], "funnel": fn["funnel"], "templates": top, "not_shown": {"templates": hidden}, "top": s,
        "gov": g, "searched": searched,
        "charts": [au["charts"][0], fn["charts"][0]],
        "tables": [
            au["tables"][0], fn["tables"][0],
            ("templates", ["template", "runs", "success rate %"], [[t["entityref"], t["count"], t["success_pct"]]
                                                                   for t in top]),
            ("searches", ["query", "searches"], [[r["query"], r["count"]] for r in s]),
            ("governance", ["closed requests", "SLA breaches (escalated or expired)"], [[g["decided"], g["breaches"]]]),
            *_not_shown_table({"templates": hidden}),
        ],
    }


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    build: Callable[..., dict]
    dated: bool = True  # catalog health is the current state: the date range does not apply


DASHBOARDS = (
    Dashboard("overview", "Overview", overview),
    Dashboard("active-users", "Active users", active_users),
    Dashboard("funnel", "Onboarding funnel", funnel),
    Dashboard("usage", "Templates, entities, docs", usage),
    Dashboard("searches", "Searches", searches),
    Dashboard("governance", "Governance flow", governance),
    Dashboard("catalog-health", "Catalog health", catalog_health, dated=False),
)
BY_SLUG = {d.slug: d for d in DASHBOARDS}

