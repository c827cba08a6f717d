"""Feedback pages: the "Was this useful?" form (htmx fragment, or a plain POST and a redirect back), the
platform feedback form, one item (answer and status for its owners, votes), "my feedback" and the
team's feedback, and the roadmap. Thin: services write, selectors read, permissions decide."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.accounts import permissions
from portal.core.client_address import client_address
from portal.core.limits import COMMENT, body_limit

from . import conf, selectors, services
from .models import OPEN_STATUSES, Status, TargetKind
from .rendering import render_comment

VOTE_ON = ("roadmap", "detail")  # the page a vote button sits on: what its htmx answer carries besides it


def _next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return fallback


def widget_context(request: HttpRequest, kind: str, target: str, path: str = "", **extra) -> dict:
    """What the "Was this useful?" fragment shows: the user's current answer for this target."""
    key = services.target_key(kind, target, path)
    item = extra.pop("item", None) or selectors.my_answer(request.user, key)
    return {"kind": kind, "target": target, "path": path, "item": item, "next": request.get_full_path(),
            "dom_id": f"fb-{kind}", "noun": {"docs": "page", "template": "template", "entity": "entry"}.get(kind, ""),
            "max_chars": conf.get("MAX_COMMENT_CHARS"), **extra}


@body_limit(COMMENT)
@require_POST
def useful(request: HttpRequest) -> HttpResponse:
    kind, target, path = request.POST.get("kind", ""), request.POST.get("target", ""), request.POST.get("path", "")
    answer = request.POST.get("useful", "")
    htmx = getattr(request, "htmx", False)
    try:
        item, _ = services.feedback_give(
            actor=request.user, kind=kind, target=target, path=path,
            useful={"yes": True, "no": False}.get(answer), comment=request.POST.get("comment", ""),
        )
    except services.FeedbackError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        fb = widget_context(request, kind, target, path, error=exc.message, draft=request.POST.get("comment", ""))
        fb["next"] = _next(request, "/")
        if htmx:  # htmx swaps 2xx answers only: the fragment carries the error (role=alert)
            return render(request, "feedback/inc/useful.html", {"fb": fb})
        return render(request, "feedback/give.html", {"fb": fb}, status=400)
    fb = widget_context(request, kind, target, path, item=item, saved=True)
    if htmx:
        fb["next"] = _next(request, item.get_absolute_url())
        return render(request, "feedback/inc/useful.html", {"fb": fb})
    messages.success(request, "Thank you: your feedback is saved.")
    return redirect(_next(request, item.get_absolute_url()))


@body_limit(COMMENT)
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """Feedback about the portal itself, for the platform team."""
    values = {"title": "", "comment": "", "client_key": uuid.uuid4().hex}
    error = field = ""
    status = 200
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in values}
        try:
            item, created = services.feedback_give(actor=request.user, kind=TargetKind.PLATFORM, title=values["title"],
                                                   comment=values["comment"], client_key=values["client_key"])
        except services.FeedbackError as exc:
            error, field, status = exc.message, exc.field, exc.status
        else:
            messages.success(request, "Thank you: the platform team has your feedback." if created
                             else "Already sent: this is the feedback you submitted.")
            return redirect(item.get_absolute_url())
    team = services.platform_team()
    return render(request, "feedback/new.html", {"values": values, "error": error, "field": field, "team": team,
                                                 "max_chars": conf.get("MAX_COMMENT_CHARS"),
                                                 "max_title": conf.get("MAX_TITLE_CHARS")}, status=status)


@require_safe
def item_list(request: HttpRequest) -> HttpResponse:
    answers_for = permissions.feedback_answer_team_ids(request.user)
    answers = answers_for is None or bool(answers_for)
    return render(request, "feedback/list.html", {
        "mine": selectors.mine(request.user),
        "team_items": selectors.for_my_teams(request.user, answers_for) if answers else [],
        "tally": selectors.useful_tally(request.user, answers_for) if answers else [],
        "answers_for_teams": answers,
    })


@require_safe
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = selectors.item_detail(request.user, pk)
    if item is None:
        raise Http404("No such feedback item")
    return render(request, "feedback/detail.html", _detail_context(request, item))


def _detail_context(request, item, **extra) -> dict:
    return {
        "item": item,
        "comment_html": render_comment(item.comment),
        "answer_html": render_comment(item.answer),
        "may_answer": permissions.may_answer_feedback(request.user, item),
        "may_vote": permissions.may_vote_feedback(request.user, item),
        "voted": bool(selectors.voted_ids(request.user, [item.pk])),
        "statuses": Status.choices,
        "max_chars": conf.get("MAX_COMMENT_CHARS"),
        **extra,
    }


@body_limit(COMMENT)
@require_POST
def answer(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.feedback_answer(actor=request.user, item_id=pk, status=request.POST.get("status", ""),
                                 answer=request.POST.get("answer", ""), remote_addr=client_address(request))
    except services.FeedbackError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        if exc.status == 403:
            messages.error(request, exc.message)
            return redirect("feedback:detail", pk)
        item = selectors.item_detail(request.user, pk)
        context = _detail_context(request, item, answer_error=exc.message, draft=request.POST.get("answer", ""))
        return render(request, "feedback/detail.html", context, status=400)
    messages.success(request, "Saved; the author is told.")
    return redirect("feedback:detail", pk)


@body_limit(COMMENT)
@require_POST
def vote(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        item, voted = services.feedback_vote(actor=request.user, item_id=pk)
    except services.FeedbackError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        return redirect(_next(request, reverse("feedback:detail", args=[pk])))
    if getattr(request, "htmx", False):
        on = request.POST.get("on", "")
        context = {"voted": voted, "may_vote": True, "next": _next(request, ""), "on": on if on in VOTE_ON else ""}
        if on == "roadmap":  # the row's asking teams and score change too (swapped out of band)
            row = selectors.roadmap_row(request.user, pk)
            context.update(row=row, item=row.item if row else selectors.item_detail(request.user, pk),
                           weight=conf.get("VOTE_WEIGHT"))
        else:
            context["item"] = selectors.item_detail(request.user, pk)
        return render(request, "feedback/inc/vote.html", context)
    messages.success(request, "Your vote counts." if voted else "Your vote is withdrawn.")
    return redirect(_next(request, item.get_absolute_url()))


@require_safe
def roadmap(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    status = status if status in OPEN_STATUSES else ""
    kind = kind if kind in TargetKind.values else ""
    rows = selectors.roadmap(request.user, status=status, kind=kind)
    return render(request, "feedback/roadmap.html", {
        "rows": rows, "status": status, "kind": kind, "kinds": TargetKind.choices,
        "statuses": [(s, Status(s).label) for s in OPEN_STATUSES],
        "weight": conf.get("VOTE_WEIGHT"), "days": conf.get("ACTIVE_DAYS"),
    })
