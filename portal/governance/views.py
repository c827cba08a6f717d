"""Reviewers and requesters in the browser: inbox, request page (htmx decisions, live status), new
request form, policy source, and the platform admins' audit page with CSV/JSON export."""

from __future__ import annotations

import csv
import json

import markdown
import nh3
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from catalog.models import Entity, ModelVersion
from portal.accounts import permissions
from portal.core.audit import chain_head, export_document
from portal.core.client_address import client_address
from portal.core.limits import COMMENT, FORM, PARAMETERS, body_limit
from portal.core.spreadsheet import safe_cell

from . import conf, gate_input, impact, policy, selectors, services
from .forms import DecisionForm, NewRequestForm
from .models import ActionType, Notification, RequestImpact, State

LIVE_STATES = {State.PENDING, State.APPROVED, State.EXECUTING}


def _remote(request) -> str | None:
    return client_address(request)


@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    waiting = list(selectors.inbox(request.user)[:200])
    now = timezone.now()
    for req in waiting:
        req.is_overdue = bool(req.escalate_at and req.escalate_at <= now)
    context = {
        "waiting": waiting,
        "mine": selectors.mine(request.user)[:50],
        "notifications": Notification.objects.filter(user=request.user, read_at__isnull=True).select_related(
            "request"
        )[:20],
    }
    return render(request, "governance/inbox.html", context)


@body_limit(FORM)
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("governance:inbox")


def _detail_context(request, req) -> dict:
    stage = next((s for s in selectors.stages_with_votes(req) if s["stage"].index == req.current_stage), None)
    may_decide = (
        req.state == State.IN_REVIEW
        and req.requester_id != request.user.pk
        and stage is not None
        and services.may_review_stage(request.user, stage["stage"])
        and not req.decisions.filter(user=request.user).exists()
    )
    card_html = ""
    if req.entity is not None and req.entity.kind_key == "model":
        text = gate_input.read_model_card(req.entity)
        if text:
            text = text.split("---", 2)[-1] if text.startswith("---") else text
            card_html = nh3.clean(markdown.markdown(text, extensions=["tables"]))
    # Features consumed and training data: what a model declares (other targets have the impact list).
    lineage = _lineage(request.user, req.entity) if req.entity is not None and req.entity.kind_key == "model" else {}
    queued = selectors.queued_steps(req)
    snapshot = RequestImpact.objects.filter(request=req).first() if impact.applies(req) else None
    return {
        "impact": impact.for_viewer(snapshot, request.user),
        "impact_pending": impact.applies(req) and snapshot is None,
        "req": req,
        "stages": selectors.stages_with_votes(req),
        "policy_results": list(req.policy_results.all()),
        "decisions": list(req.decisions.select_related("user", "stage")),
        "comments": list(req.comments.select_related("author")),
        "metrics": selectors.metrics_comparison(req),
        "card_html": card_html,
        "lineage": lineage,
        "queued": queued,
        "live": req.state in LIVE_STATES or queued > 0,
        "may_decide": may_decide,
        "is_requester": req.requester_id == request.user.pk,
        "own_request_in_review": req.state == State.IN_REVIEW and req.requester_id == request.user.pk,
        "history": _history(req),
        "max_comment": conf.get("MAX_COMMENT_CHARS"),
        "confirm_reason": services.confirmation_reason(req) if may_decide else None,
        "confirm_word": services.confirmation_word(req) if may_decide else "",
    }


def _lineage(user, entity) -> dict:
    """Features and training datasets as links: each ref with its entity when the user may see it
    (one query for both lists); a ref without one is shown as missing, like on the entity page."""
    spec = entity.spec
    wanted = {
        "features": [gate_input.normalise_ref(v, "featureset") for v in spec.get("consumesFeatures") or []
                     if isinstance(v, str)],
        "datasets": [gate_input.normalise_ref(v, "dataset") for v in spec.get("trainedOn") or []
                     if isinstance(v, str)],
    }
    refs = {ref for refs in wanted.values() for ref in refs}
    found = {e.ref: e for e in permissions.filter_visible(Entity.objects.filter(ref__in=refs), user)} if refs else {}
    return {key: [{"ref": ref, "entity": found.get(ref)} for ref in refs] for key, refs in wanted.items()}


def _history(req) -> list:
    from portal.core.models import AuditEvent

    rows = []
    for event in AuditEvent.objects.filter(target=req.audit_target).order_by("seq"):
        payload = json.loads(event.payload)
        rows.append(
            {
                "seq": event.seq,
                "at": event.created_at,
                "actor": event.actor,
                "action": event.action.rsplit(".", 1)[-1],
                "outcome": payload.get("outcome"),
                "state": (payload.get("after") or {}).get("state", ""),
            }
        )
    return rows


@require_safe
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    req = services.get_visible(request.user, pk)
    context = _detail_context(request, req)
    if request.htmx and request.GET.get("part") == "status":
        response = render(request, "governance/request_detail.html#status", context)
        if request.GET.get("seen") != str(req.version):
            response["HX-Refresh"] = "true"  # the state moved on: show the whole page anew
    else:
        response = render(request, "governance/request_detail.html", context)
    response["Vary"] = "HX-Request"
    return response


def _back(request, req) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(req.get_absolute_url())
    return redirect(req.get_absolute_url())


@body_limit(COMMENT)
@require_POST
def request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    req = services.get_visible(request.user, pk)
    form = DecisionForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose approve, reject or request changes."
    elif problem := services.confirmation_problem(req, form.cleaned_data["decision"], request.POST.get("confirm")):
        error = problem
    else:
        try:
            services.request_decide(
                actor=request.user,
                request_id=pk,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data["comment"],
                remote_addr=_remote(request),
            )
        except services.GovernanceError as exc:
            error = exc.message
        except PermissionDenied as exc:
            error = str(exc)
    if error:
        if request.htmx:
            context = _detail_context(request, services.get_visible(request.user, pk))
            context.update(decision_error=error, comment_value=request.POST.get("comment", "")[:20000])
            response = render(request, "governance/request_detail.html#decide", context, status=200)
            return response
        messages.error(request, error)
        return redirect(req.get_absolute_url())
    messages.success(request, "Your decision is recorded.")
    return _back(request, req)


@body_limit(FORM)
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.request_withdraw, "The request is withdrawn.")


@body_limit(FORM)
@require_POST
def request_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.request_retry_execution, "Execution queued again.")


def _act(request: HttpRequest, pk: int, service, done: str) -> HttpResponse:
    """`service` on a request the user may see (404 otherwise); back to its page with `done` or the
    reason it was refused."""
    req = services.get_visible(request.user, pk)
    try:
        service(actor=request.user, request_id=pk, remote_addr=_remote(request))
        messages.success(request, done)
    except (services.GovernanceError, PermissionDenied) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    return _back(request, req)


@body_limit(COMMENT)
@require_POST
def request_comment(request: HttpRequest, pk: int) -> HttpResponse:
    req = services.get_visible(request.user, pk)
    try:
        # The decision form's one comment box (field `comment`) can also post a comment on its own.
        body = request.POST.get("body", request.POST.get("comment", ""))
        services.request_comment(actor=request.user, request_id=pk, body=body, remote_addr=_remote(request))
    except services.GovernanceError as exc:
        messages.error(request, exc.message)
    return _back(request, req)


@require_http_methods(["GET", "POST"])
@body_limit(PARAMETERS)
def request_new(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    try:
        ref = services.parse_ref(data.get("target", ""))
    except services.GovernanceError as exc:
        raise Http404(exc.message) from None
    entity = Entity.objects.filter(ref=ref).first()
    if entity is None or not permissions.can(request.user, permissions.Action.VIEW, entity):
        raise Http404("No such entity")
    action = data.get("action") or ActionType.PROMOTE_MODEL_VERSION
    refusal = services.request_refusal(request.user, action, entity) if action in ActionType.values else None
    if refusal is not None:
        # Said before anything is typed: no form is offered to someone who could not submit it.
        label = ActionType(action).label
        return render(request, "governance/request_new.html",
                      {"entity": entity, "action": action, "action_label": label, "refusal": refusal}, status=403)
    versions = list(ModelVersion.objects.filter(entity=entity).order_by("-version_number"))
    form = NewRequestForm(request.POST if request.method == "POST" else None, action=action, target=ref,
                          versions=versions)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        cleaned = form.cleaned_data
        try:
            req = services.request_create(
                actor=request.user,
                action=cleaned["action"],
                target=cleaned["target"],
                params=form.params(),
                justification=cleaned["justification"],
                remote_addr=_remote(request),
            )
        except services.GovernanceError as exc:
            error, status = exc.message, exc.status
        except PermissionDenied as exc:
            error, status = str(exc), 403
        else:
            messages.success(request, f"Request #{req.pk} submitted; the policy gates are running.")
            return redirect(req.get_absolute_url())
    elif request.method == "POST":
        error, status = "Please correct the form.", 400
    return render(
        request,
        "governance/request_new.html",
        {
            "form": form,
            "entity": entity,
            "action": action,
            "action_label": ActionType(action).label if action in ActionType.values else action,
            "versions": versions,
            "error": error,
        },
        status=status,
    )


@require_safe
def policy_source(request: HttpRequest, gate: str) -> HttpResponse:
    found = policy.policy_source(gate)
    if found is None:
        raise Http404("No such policy")
    name, text = found
    return render(
        request,
        "governance/policy.html",
        {"name": name, "text": text, "gate": gate, "hash": policy.current().gate_hash(gate)},
    )


@require_safe
def audit(request: HttpRequest) -> HttpResponse:
    qs, errors = selectors.audit_events(request.user, request.GET)
    fmt = request.GET.get("format")
    if fmt == "json":
        applied = {k: request.GET[k] for k in selectors.AUDIT_FILTERS if request.GET.get(k) and k not in errors}
        return _export_json(qs, applied)
    if fmt == "csv":
        return _export_csv(qs)
    paginator = Paginator(qs.order_by("-seq"), 50)
    page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "governance/audit.html",
        {
            "page": page,
            "errors": errors,
            "head": chain_head(),
            "query": params.urlencode(),
            "filters": {
                k: request.GET.get(k, "") for k in ("actor", "action", "target", "request", "since", "until")
            },
        },
    )


def _export_json(qs, filters: dict[str, str]) -> HttpResponse:
    """The events with the chain head and the filters applied (`audit verify --file` reads them)."""
    body = export_document(qs, filters)
    response = JsonResponse(body, json_dumps_params={"ensure_ascii": False})
    response["Content-Disposition"] = 'attachment; filename="plinth-audit.json"'
    return response


class _Echo:
    def write(self, value):
        return value


def _export_csv(qs) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    head = chain_head()

    def rows():
        yield writer.writerow(["# chain head", head["seq"], head["hash"]])
        yield writer.writerow(
            [
                "seq",
                "at",
                "actor",
                "action",
                "target",
                "outcome",
                "remote_addr",
                "request_id",
                "policy_hash",
                "approval_request_id",
                "payload",
                "prev_hash",
                "hash",
            ]
        )
        for e in qs.filter(seq__lte=head["seq"]).iterator(chunk_size=2000):
            p = json.loads(e.payload)
            # Every cell through safe_cell: request_id comes from a client's X-Request-ID header.
            yield writer.writerow(
                [
                    safe_cell(value)
                    for value in (
                        e.seq,
                        e.created_at,
                        e.actor,
                        e.action,
                        e.target,
                        p.get("outcome"),
                        p.get("remote_addr"),
                        p.get("request_id"),
                        p.get("policy_hash"),
                        p.get("approval_request_id"),
                        e.payload,
                        e.prev_hash,
                        e.hash,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="plinth-audit.csv"'
    return response
