"""Pages: the cost overview (by team, kind, domain, top entities), a team's costs and budget, the ROI
portfolio, and the imports page (upload + history). `?format=csv` downloads what a page shows."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.limits import FORM, body_limit
from portal.insights import charts
from portal.insights.export import tables_to_csv

from . import conf, focus, selectors, services
from .models import Budget

MONTH = re.compile(r"(\d{4})-(\d{2})")


class BadParameter(ValueError):
    pass


def _month(request: HttpRequest, available: list[date]) -> date:
    raw = request.GET.get("month", "")
    if not raw:
        return available[0] if available else date(timezone.now().year, timezone.now().month, 1)
    match = MONTH.fullmatch(raw)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise BadParameter(f"month: {raw[:20]!r} is not a month; use YYYY-MM")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _currency(request: HttpRequest, totals: dict) -> str:
    raw = request.GET.get("currency", "").upper()
    if raw and not focus.CURRENCY.fullmatch(raw):
        raise BadParameter(f"currency: {raw[:10]!r} is not an ISO 4217 code")
    if raw:
        return raw
    return max(totals, key=lambda c: totals[c]["total"]) if totals else ""


def _csv(name: str, tables) -> HttpResponse:
    response = HttpResponse(tables_to_csv(tables), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _fmt(amount) -> str:
    return f"{amount:,.2f}"


def _bad(request, message: str) -> HttpResponse:
    if request.GET.get("format") == "csv":
        return HttpResponse(message + "\n", status=400, content_type="text/plain; charset=utf-8")
    return render(request, "costs/bad_request.html", {"message": message}, status=400)


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    available = selectors.months(request.user)
    try:
        month = _month(request, available)
        totals = selectors.month_totals(request.user, month)
        currency = _currency(request, totals)
    except BadParameter as exc:
        return _bad(request, str(exc))
    data = selectors.overview(request.user, month, currency) | {"totals": totals}
    ym = month.strftime("%Y-%m")
    team_rows = [(r["owner_team__title"] or r["owner_team__name"] or "(no team)", float(r["effective"]),
                  _fmt(r["effective"])) for r in data["by_team"]]
    domains = selectors.domain_titles(request.user, [r["domain"] for r in data["by_domain"]] + [a.domain for a in data["top"]])
    kind_rows = [(r["kind"] or "other", float(r["effective"]), _fmt(r["effective"])) for r in data["by_kind"]]
    domain_rows = [(domains[r["domain"]], float(r["effective"]), _fmt(r["effective"])) for r in data["by_domain"]]
    for a in data["top"]:
        a.domain_title = domains.get(a.domain, "")
    if request.GET.get("format") == "csv":
        return _csv(f"costs-{ym}-{currency or 'none'}.csv", [
            ("totals", ["currency", "entity", "team", "shared", "unallocated", "total"],
             [[c, *(float(t[k]) for k in ("entity", "team", "shared", "unallocated", "total"))]
              for c, t in data["totals"].items()]),
            # The file keeps identifiers (team names, domain references); the page shows titles.
            ("team", ["team", f"effective ({currency})"],
             [[r["owner_team__name"] or "(no team)", float(r["effective"])] for r in data["by_team"]]),
            ("kind", ["kind", f"effective ({currency})"], [[a, b] for a, b, _ in kind_rows]),
            ("domain", ["domain", f"effective ({currency})"], [[r["domain"], float(r["effective"])] for r in data["by_domain"]]),
            ("entity", ["entity", "team", f"effective ({currency})", f"billed ({currency})"],
             [[a.entity.ref, a.owner_team.name if a.owner_team else "", float(a.effective_cost), float(a.billed_cost)]
              for a in data["top"]]),
        ])
    trend = selectors.trend(request.user, currency) if currency else []
    context = {
        "month": month, "ym": ym, "months": available, "currency": currency, "data": data,
        "charts": [charts.bar_chart("by-team", f"By team ({currency})", team_rows, unit=currency),
                   charts.bar_chart("by-kind", f"By kind ({currency})", kind_rows, unit=currency),
                   charts.bar_chart("by-domain", f"By domain ({currency})", domain_rows, unit=currency)],
        "trend": _trend("trend", currency, trend),
    }
    return render(request, "costs/index.html", context)


def _trend(key: str, currency: str, trend: list) -> dict | None:
    """The monthly cost line, or with a single month that month's figure alone (one point is not a trend)."""
    if not trend:
        return None
    points = [(m, float(v)) for m, v in trend]
    if len(points) == 1:
        return {"key": key, "single": True, "month": points[0][0], "amount": _fmt(trend[0][1]), "currency": currency}
    return charts.line_chart(key, f"Monthly cost ({currency})", points, unit=currency)


def _team(name: str) -> Team:
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise Http404("No such team")
    return team


@require_safe
def team(request: HttpRequest, name: str) -> HttpResponse:
    team = _team(name)
    available = selectors.months(request.user)
    try:
        month = _month(request, available)
    except BadParameter as exc:
        return _bad(request, str(exc))
    data = selectors.team_view(request.user, team, month)
    budgets = list(Budget.objects.filter(team=team).order_by("currency"))
    for b in budgets:
        spent = data["totals"].get(b.currency, {}).get("total", Decimal(0))
        b.spent = spent
        b.percent = float(spent / b.amount * 100) if b.amount else 0.0
        b.meter = min(100.0, b.percent)
    ym = month.strftime("%Y-%m")
    if request.GET.get("format") == "csv":
        return _csv(f"costs-{team.name}-{ym}.csv", [
            ("totals", ["currency", "entity", "team", "shared", "total"],
             [[c, *(float(t[k]) for k in ("entity", "team", "shared", "total"))] for c, t in data["totals"].items()]),
            ("entity", ["entity", "kind", "currency", "effective", "billed", "lines"],
             [[a.entity.ref, a.kind, a.currency, float(a.effective_cost), float(a.billed_cost), a.lines]
              for a in data["entities"]]),
        ])
    currency = max(data["totals"], key=lambda c: data["totals"][c]["total"]) if data["totals"] else ""
    trend = selectors.trend(request.user, currency, team_id=team.pk) if currency else []
    context = {"team": team, "month": month, "ym": ym, "months": available, "data": data, "budgets": budgets,
               "may_budget": permissions.can_on_team(request.user, permissions.Action.MANAGE_TEAM, team.pk),
               "trend": _trend("team-trend", currency, trend)}
    return render(request, "costs/team.html", context)


@body_limit(FORM)
@require_POST
def budget(request: HttpRequest, name: str) -> HttpResponse:
    team = _team(name)
    try:
        services.budget_set(actor=request.user, team=team, currency=request.POST.get("currency", ""),
                            amount=request.POST.get("amount", ""))
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(request, f"{field.capitalize()}: {' '.join(errors)}")
    else:
        messages.success(request, "Budget saved.")
    return redirect("costs:team", team.name)


@require_safe
def portfolio(request: HttpRequest) -> HttpResponse:
    available = selectors.months(request.user)
    try:
        month = _month(request, available)
    except BadParameter as exc:
        return _bad(request, str(exc))
    data = selectors.portfolio(request.user, month)
    ym = month.strftime("%Y-%m")
    if request.GET.get("format") == "csv":
        return _csv(f"portfolio-{ym}.csv", [("model", ["model", "team", "kpi", "value", "cost", "currency", "ratio"], [
            [r["entity"].ref, r["entity"].team or "", r["value"].kpi,
             None if r["value"].amount is None else float(r["value"].amount),
             None if r["cost"] is None else float(r["cost"]), r["value"].currency,
             None if r["ratio"] is None else round(r["ratio"], 3)] for r in data["rows"]])])
    rows = [(r["entity"].display_name, r["ratio"], f"{r['ratio']:.1f}×") for r in data["rows"] if r["ratio"]]
    return render(request, "costs/portfolio.html", {
        "month": month, "ym": ym, "months": available, "data": data,
        "chart": charts.bar_chart("roi", "Value per unit of cost", rows, unit="ratio")})


def _upload_limit() -> int:
    return int(conf.get("MAX_UPLOAD_BYTES"))


@body_limit(_upload_limit)
@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    if not services.may_import(request.user):
        raise PermissionDenied("Only platform admins import cost exports.")
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationError({"file": "Choose a FOCUS export (CSV or Parquet)."})
            with on_disk(upload) as path:
                imp = services.import_queue(source_path=path, file_name=upload.name,
                                            provider=request.POST.get("provider", ""), source="upload",
                                            actor=request.user)
        except focus.FocusError as exc:
            messages.error(request, str(exc))
            status = 400
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                messages.error(request, f"{field.capitalize()}: {' '.join(errors)}")
            status = 400
        else:
            messages.success(request, f"{imp.file_name} is queued for import (#{imp.pk}).")
            return redirect("costs:imports")
    return render(request, "costs/imports.html", {"imports": selectors.imports(), "max_bytes": _upload_limit(),
                                                  "required": focus.REQUIRED, "optional": focus.OPTIONAL},
                  status=status)


@contextlib.contextmanager
def on_disk(upload) -> Iterator[Path]:
    """The upload as a file of its own: Django's temporary file (a large upload, already on disk), or a small
    in-memory one written out. Whatever the import did not move away is removed afterwards."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())  # Django deletes it when the request ends
        return
    with tempfile.NamedTemporaryFile(delete=False, suffix=".upload") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        yield Path(out.name)
    finally:
        Path(out.name).unlink(missing_ok=True)
