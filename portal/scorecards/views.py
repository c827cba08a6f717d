"""Pages: the scorecards index (per-team rollups with trends), a scorecard, the entities behind each of
its counts, a campaign, and the owner's answer to a manual check (posted from the entity's Scorecards
tab)."""

from __future__ import annotations

from datetime import datetime, time
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from catalog import selectors as catalog_selectors

from . import definitions, filters, selectors, services

PAGE = 50


@require_safe
def index(request):
    cards = definitions.load_all()
    rows = []
    for card in cards:
        counts, as_of = ({}, None) if card.error else selectors.level_counts(request.user, card)
        rows.append({"card": card, "counts": counts, "as_of": as_of})
    for row in rows:
        base = reverse("scorecards:entities", args=[row["card"].name])
        # (level, count, the drill-down's address — "" for a zero, as the scorecard page's counts)
        row["per_level"] = [(name, n, f"{base}?{urlencode({'level': name})}" if n else "")
                            for name in ["", *row["card"].levels] for n in [row["counts"].get(name, 0)]]
        row["total"] = sum(row["counts"].values())
    return render(request, "scorecards/index.html", {"rows": rows})


def _card(name: str):
    card = definitions.get(name)
    if card is None:
        raise Http404("No such scorecard")
    return card


@require_safe
def detail(request, name: str):
    card = _card(name)
    compiled_errors = {}
    teams = domains = []
    if not card.error:
        from . import engine

        compiled_errors = engine.compiled(card).errors
        teams = _linked(card, selectors.team_rollup(request.user, card), "team")
        domains = _linked(card, selectors.domain_rollup(request.user, card), "domain")
    return render(request, "scorecards/detail.html", {
        "card": card, "teams": teams, "domains": domains, "check_errors": compiled_errors,
        "as_of": None if card.error else selectors.refreshed_at(card),
        "level_names": ["", *card.levels],
    })


def _linked(card, rows: list[dict], by: str) -> list[dict]:
    """Each row's counts with the address of the entities behind them ("" for a zero): the list filtered
    by that level and that team or domain, an empty value meaning none (filters.py)."""
    base = reverse("scorecards:entities", args=[card.name])
    for row in rows:
        row["cells"] = [(level, n, f"{base}?{urlencode({'level': level, by: row[by]})}" if n else "")
                        for level, n in row["per_level"]]
    return rows


def _label(chosen: filters.EntityFilter) -> str:
    """The list's heading: "Bronze · Fraud ML", "No level · No domain", "All levels"."""
    parts = ["All levels" if chosen.level is None else chosen.level or "No level"]
    if chosen.team is not None or chosen.unowned:
        parts.append(chosen.team.display_name if chosen.team else "Unowned")
    if chosen.domain is not None:
        parts.append(chosen.domain.rsplit("/", 1)[-1] if chosen.domain else "No domain")
    return " · ".join(parts)


def _empty(chosen: filters.EntityFilter) -> str:
    """An empty list's sentence, neutral on why: "No entity of Fraud ML is at Bronze on this scorecard now."."""
    words = ["No entity"]
    if chosen.team is not None:
        words.append(f"of {chosen.team.display_name}")
    elif chosen.unowned:
        words.append("owned by no team")
    if chosen.domain is not None:
        words.append(f"in {chosen.domain.rsplit('/', 1)[-1]}" if chosen.domain else "in no domain")
    if chosen.level is not None:
        words.append(f"is at {chosen.level}" if chosen.level else "is without a level")
    else:
        words.append("is")
    return " ".join(words) + " on this scorecard now."


@require_safe
def entities(request, name: str):
    """The entities behind one count of the scorecard page (or any level, team and domain), a page at a
    time, each with the first check that keeps it from the next level. A constant number of queries."""
    card = _card(name)
    context = {"card": card, "chosen": filters.EntityFilter(), "label": "Entities", "problems": {}, "page": None,
               "rows": []}
    try:
        chosen = filters.parse(card, request.GET)
    except filters.FilterError as exc:  # 400, or 404 for no such team: in the page, its way back kept
        context["problems"] = {exc.field: exc.message}
        return render(request, "scorecards/entities.html", context, status=exc.status)
    page = Paginator(selectors.drilldown(request.user, card, chosen), PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    if not page.paginator.count:  # the scorecard page's count for this cell: only a non-zero one is news
        context.update(empty=_empty(chosen), counted=selectors.rollup_count(request.user, card, chosen))
    context.update(chosen=chosen, label=_label(chosen), page=page, query=query.urlencode(),
                   rank=card.levels.index(chosen.level) + 1 if chosen.level in card.levels else 0,
                   as_of=selectors.refreshed_at(card), rows=[(r, selectors.next_step(card, r)) for r in page.object_list])
    return render(request, "scorecards/entities.html", context)


@require_safe
def campaign(request, name: str, check_id: str):
    card = _card(name)
    check = card.check(check_id)
    if check is None or not check.deadline:
        raise Http404("No such campaign")
    team = request.GET.get("team")
    failing = selectors.campaign_failing(request.user, card, check, team=None if team is None else team[:150])
    return render(request, "scorecards/campaign.html", {
        "card": card, "check": check, "failing": failing, "listed_max": selectors.LISTED_PER_TEAM,
        "total": sum(t["failing"] for t in failing), "as_of": selectors.refreshed_at(card),
        "days_left": (check.deadline - timezone.now().date()).days})


@require_POST
def manual(request, kind: str, namespace: str, name: str):
    entity = catalog_selectors.entity_by_name(request.user, kind, namespace, name)
    if entity is None:
        raise Http404("No such entity")
    try:
        day = datetime.strptime(request.POST.get("expires", ""), "%Y-%m-%d").date()  # noqa: DTZ007 (a date)
    except ValueError:
        messages.error(request, "Expiry: give a date (YYYY-MM-DD).")
        return redirect("catalog:entity-tab", entity.kind_key, entity.namespace, entity.name, "scorecards")
    expires_at = timezone.make_aware(datetime.combine(day, time(23, 59, 59)))
    try:  # PermissionDenied (not an owner) answers 403 through the handler
        services.manual_set(actor=request.user, entity=entity, scorecard=request.POST.get("scorecard", "")[:63],
                            check_id=request.POST.get("check", "")[:63],
                            passed=request.POST.get("passed") == "yes",
                            justification=request.POST.get("justification", ""), expires_at=expires_at)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(request, f"{field.replace('_', ' ').capitalize()}: {' '.join(errors)}")
    else:
        messages.success(request, "Manual check recorded.")
    return redirect("catalog:entity-tab", entity.kind_key, entity.namespace, entity.name, "scorecards")
