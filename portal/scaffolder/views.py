"""Create pages: the template list, the wizard (pages + review), the run list, and run pages with live
logs, Retry and Cancel."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import PurePath

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from portal.accounts import permissions
from portal.core.limits import FORM, PARAMETERS, body_limit

from . import conf, downloads, forms, selectors, services
from .models import Run
from .templates import from_entity


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    base = selectors.templates_for(request.user)
    qs = base
    wanted_type, wanted_owner = request.GET.get("type", ""), request.GET.get("owner", "")
    if wanted_type:
        qs = qs.filter(spec_type__iexact=wanted_type)
    wanted_owner_ref = selectors.owner_ref(wanted_owner) if wanted_owner else ""
    if wanted_owner:
        qs = qs.filter(owner_ref=wanted_owner_ref)
    types = base.values("spec_type").annotate(n=Count("id")).order_by("spec_type")
    owners = base.values("owner_ref").annotate(n=Count("id")).order_by("owner_ref")
    cards = [(e, from_entity(e)) for e in qs.order_by("title", "name")]
    context = {
        "cards": cards,
        "types": types,
        "owners": [(o["owner_ref"], selectors.owner_label(o["owner_ref"]), o["n"]) for o in owners if o["owner_ref"]],
        "wanted_type": wanted_type,
        "wanted_owner": wanted_owner,
        "wanted_owner_ref": wanted_owner_ref,
        "hidden_template": HIDDEN_TEMPLATE,
        "recent": with_template_shown(request.user, selectors.runs_for(request.user).filter(created_by=request.user))[:5],
    }
    template = "scaffolder/index.html#results" if getattr(request, "htmx", False) else "scaffolder/index.html"
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    return response


def _load_values(request: HttpRequest) -> tuple[dict, str]:
    """The answers the wizard carries from page to page (its hidden `_values`), and why they could not be
    read ("" when they could). The wizard writes them itself: unreadable ones were forged, or cut."""
    try:
        values = json.loads(request.POST.get("_values") or "{}")
    except RecursionError:  # the decoder recurses once per level: `[[[[…` thousands deep
        return {}, (f"The form's answers (_values) are nested more than {forms.MAX_DEPTH} levels deep and "
                    "could not be read; nothing was kept. Start again from the first page.")
    except ValueError:
        values = None
    if not isinstance(values, dict):
        return {}, "The form's answers (_values) are not a JSON object; nothing was kept. Start again from the first page."
    return values, ""


@body_limit(PARAMETERS)
@require_http_methods(["GET", "POST"])
def template_form(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    entity = selectors.template_entity(request.user, namespace, name)
    if entity is None:
        raise Http404("No such template")
    template = from_entity(entity)
    pages = forms.pages(template, request.user)
    values = forms.with_defaults(pages, {})
    current, review, errors = 0, False, {}
    if request.method == "GET" and template.problems:  # said before anything is typed (Create stays disabled)
        messages.error(request, "This template cannot run here: " + " ".join(template.problems))
    earlier = _earlier_run(request, entity)
    if earlier is not None and pages:
        # "Start again with these answers": the failed run's parameters (never its secrets), checked at
        # once so that a name clash that failed it is said on the first page.
        values = forms.with_defaults(pages, earlier.parameters)
        errors = _check_page(request.user, pages, pages[0], values)
    loaded, unreadable = _load_values(request) if request.method == "POST" else ({}, "")
    if unreadable:  # nothing of the request is used: the first page again, with its defaults
        messages.error(request, unreadable)
    elif request.method == "POST":
        values = forms.with_defaults(pages, loaded)
        action = request.POST.get("_action", "next")
        on_review = request.POST.get("_page") == "review" or not pages
        current = len(pages) - 1 if on_review else _page_index(request.POST.get("_page"), len(pages))
        if not on_review:
            values = forms.read_page(pages[current], request.POST, values)
        if action == "back":
            current = current if on_review else max(current - 1, 0)
        elif action in ("create", "dry-run"):
            bad = _first_invalid(pages, values, request.user)
            if bad is not None:
                current = bad
                errors = _check_page(request.user, pages, pages[bad], values)
                messages.error(request, "Some values are not valid; correct them and continue.")
            elif not template.runnable:
                messages.error(
                    request,
                    "This template cannot run here: "
                    + " ".join(
                        template.problems
                        + [f"Unsupported action(s): {', '.join(template.unsupported_actions)}."]
                    ),
                )
                review = True
            else:
                return _start(request, template, entity, pages, values, dry_run=action == "dry-run")
        else:
            errors = _check_page(request.user, pages, pages[current], values) if pages else {}
            if not errors:
                if current + 1 < len(pages):
                    current += 1
                else:
                    review = True
    if not pages:
        review = True
    shown = forms.renderable(values)  # what the page can write (errors were said on `values` itself)
    for page in pages:
        forms.fill(page, shown)
    if pages and not review and errors:
        _check_page(request.user, pages, pages[current], values)  # fill() reset the values; errors go back
    secret_fields = forms.secret_names(pages)
    context = {
        "entity": entity,
        "template": template,
        "pages": pages,
        "page": pages[current] if pages and not review else None,
        "current": current,
        "review": review,
        "values_json": json.dumps(shown),
        "errors": errors,
        "has_secrets": bool(secret_fields),
        "general_errors": errors.get("", []),
    }
    return render(request, "scaffolder/template_form.html", context)


def _earlier_run(request, entity):
    uid = request.GET.get("from-run", "") if request.method == "GET" else ""
    try:
        run = selectors.run_for(request.user, uuid.UUID(uid)) if uid else None
    except ValueError:
        return None
    return run if run is not None and run.template_ref == entity.ref else None


def _page_index(raw, count: int) -> int:
    try:
        return min(max(int(raw or 0), 0), max(count - 1, 0))
    except ValueError:
        return 0


def _first_invalid(pages, values, user=None) -> int | None:
    for page in pages:
        if _check_page(user, pages, page, values):
            return page.index
    return None


def _check_page(user, pages, page, values) -> dict[str, list[str]]:
    return forms.check_page(user, pages, page, values)


@require_safe
def check_name(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """The live check under a name field of the first wizard page (htmx, as the name is typed)."""
    entity = selectors.template_entity(request.user, namespace, name)
    if entity is None:
        raise Http404("No such template")
    pages = forms.pages(from_entity(entity), request.user)
    field = next((f for p in pages[:1] for f in p.fields if f.checks_name), None)
    if field is None:  # nothing to check; htmx swaps nothing on 204
        return HttpResponse(status=204)
    values = forms.with_defaults(pages, {})
    values = forms.read_page(pages[0], request.GET, values)
    errors = _check_page(request.user, pages, pages[0], values)
    value = values.get(field.name)
    context = {"f": field, "messages": errors.get(field.name, []), "value": value if isinstance(value, str) else ""}
    return render(request, "scaffolder/inc/name_check.html", context)


def _start(request, template, entity, pages, values, *, dry_run: bool) -> HttpResponse:
    parameters, secret_values = forms.split_secrets(pages, values)
    owner_team = forms.owner_team(pages, values, request.user)
    run = services.run_create(
        template=template,
        entity=entity,
        actor=request.user,
        parameters=parameters,
        secret_values=secret_values,
        dry_run=dry_run,
        owner_team=owner_team,
    )
    return redirect(run.get_absolute_url())


def _run_or_404(request, uid):
    run = selectors.run_for(request.user, uid)
    if run is None:
        raise Http404("No such run")
    return run


HIDDEN_TEMPLATE = "a template you may not see"


def with_template_shown(user, runs: QuerySet[Run]) -> QuerySet[Run]:
    """Each run with `template_shown`: whether `user` may see the template it ran. A run made for your
    team from another team's private template is yours to see (its steps, log and output are your
    team's), but the template is not: it is never named (title, reference, link) on it."""
    visible = selectors.templates_for(user).filter(ref=OuterRef("template_ref"))
    return runs.annotate(template_shown=Exists(visible))


def template_shown(user, run: Run) -> bool:
    """One run's `template_shown` (see with_template_shown); the API answers by it too."""
    return selectors.templates_for(user).filter(ref=run.template_ref).exists()


def template_hider(run: Run, shown: bool) -> Callable[[str], str]:
    """What a run's texts (log, step messages, error) become for a viewer who may not see its template:
    its title, reference and folder replaced by HIDDEN_TEMPLATE ("Run of <title> started." is the
    executor's first log line). The run's own words (its steps, what they logged) stay."""
    folder = str(PurePath(run.template_source).parent) if run.template_source else ""
    names = [n for n in (run.template_ref, run.template_title, folder) if n and n not in (".", "/")]
    if shown or not names:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))
    return lambda text: pattern.sub(HIDDEN_TEMPLATE, text) if text else text


@require_safe
def run_detail(request: HttpRequest, uid) -> HttpResponse:
    return _run_page(request, _run_or_404(request, uid))


def _run_page(request: HttpRequest, run: Run, *, cancel_error: str = "") -> HttpResponse:
    """The run page, or its live `#status` fragment for htmx (the poll, and the Cancel button's answer)."""
    run.template_shown = template_shown(request.user, run)
    hide = template_hider(run, run.template_shown)
    steps = list(run.steps.all())
    logs, log_total = selectors.run_log(run)
    run.error = hide(run.error)  # in memory, for this page only
    for row in (*steps, *logs):
        row.message = hide(row.message)
    context = {
        "run": run,
        "steps": steps,
        "logs": logs,
        "log_total": log_total,
        "stale_after": conf.stale_seconds(),
        "can_retry": run.status == "failed" and permissions.may_retry_run(request.user, run),
        "can_cancel": not run.finished and not run.cancelling and permissions.may_cancel_run(request.user, run),
        "cancel_error": cancel_error,
        "restart_url": _restart_url(run),
        "template_label": (run.template_title or run.template_ref) if run.template_shown else HIDDEN_TEMPLATE,
    }
    template = (
        "scaffolder/run_detail.html#status"
        if getattr(request, "htmx", False)
        else "scaffolder/run_detail.html"
    )
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    response["Cache-Control"] = "no-store"
    return response


def _restart_url(run) -> str:
    """The wizard prefilled with a failed run's answers, when its template is still in the catalog and
    the viewer may see it (the wizard would answer 404)."""
    kind, _, rest = run.template_ref.partition(":")
    namespace, _, name = rest.partition("/")
    if run.status != "failed" or kind != "template" or not name or not run.template_shown:
        return ""
    return reverse("scaffolder:template", args=[namespace, name]) + f"?from-run={run.uid}"


@body_limit(FORM)
@require_http_methods(["POST"])
def run_retry(request: HttpRequest, uid) -> HttpResponse:
    run = _run_or_404(request, uid)
    try:
        services.run_retry(run=run, actor=request.user)
    except services.RetryRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The run was queued again; steps that already published are not repeated.")
    return redirect(run.get_absolute_url())


@body_limit(FORM)
@require_http_methods(["POST"])
def run_cancel(request: HttpRequest, uid) -> HttpResponse:
    """The run page's Cancel button: htmx swaps the live status in place; without htmx, back to the page."""
    run = _run_or_404(request, uid)
    try:
        run = services.run_cancel(run=run, actor=request.user)
    except services.CancelRefused as exc:
        if getattr(request, "htmx", False):
            return _run_page(request, Run.objects.get(pk=run.pk), cancel_error=str(exc))
        messages.error(request, str(exc))
        return redirect(run.get_absolute_url())
    if getattr(request, "htmx", False):
        return _run_page(request, run)
    if run.finished:
        messages.success(request, "The run was cancelled before it started.")
    else:
        messages.success(request, "Cancel requested: the run stops before its next step.")
    return redirect(run.get_absolute_url())


RUNS_PER_PAGE = 50


@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    """Every run the user may see, newest first, a page at a time (two queries: the count and the page)."""
    runs = with_template_shown(request.user, selectors.runs_for(request.user).select_related("created_by"))
    page = Paginator(runs.order_by("-created_at", "-id"), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "scaffolder/run_list.html",
                  {"page": page, "runs": page.object_list, "query": "", "hidden_template": HIDDEN_TEMPLATE})


@require_safe
def repository_download(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    """The git bundle of a repository publish:git made (`git clone <file> <name>`), for whoever may see
    the run that published it; any other asker gets a 404, as for a missing one."""
    repository = selectors.published_repository(request.user, owner, name)
    if repository is None or not downloads.bundle_exists(repository):
        raise Http404("No such repository")
    return FileResponse(downloads.open_bundle(repository), content_type="application/octet-stream",
                        as_attachment=True, filename=f"{repository.name}.bundle")


@require_safe
def run_download(request: HttpRequest, uid) -> HttpResponse:
    run = _run_or_404(request, uid)
    if not downloads.exists(run.uid):
        raise Http404("No download for this run")
    return FileResponse(
        downloads.open_(run.uid),
        content_type="application/zip",
        as_attachment=True,
        filename=f"{run.template_ref.split('/')[-1] if template_shown(request.user, run) else 'run'}-{str(run.uid)[:8]}.zip",
    )
