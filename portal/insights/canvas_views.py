"""The capability canvas page and its one-page PDF (thin: load, evaluate, render)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_safe

from portal.accounts import permissions

from . import canvas, pdf

PRINT_CSS = "css/insights-canvas-print.css"


def _context(request: HttpRequest) -> tuple[dict, int]:
    if not permissions.may_see_canvas(request.user):
        raise PermissionDenied("The capability canvas is for platform admins and team admins.")
    try:
        data = canvas.load()
    except canvas.CanvasInvalid as exc:
        shown = exc.problems if permissions.may_see_canvas_problems(request.user) else []
        return {"problems": shown, "invalid": True}, 503
    evaluated = canvas.evaluate(data)
    links = canvas.provider_links(data, request.user)
    for persona in evaluated.personas:
        for journey in persona["journeys"]:
            for capability in journey["capabilities"]:
                capability["providers"] = [
                    {"label": p.get("label") or p.get("feature") or p["entity"],
                     "url": links[p.get("feature") or p["entity"]], "entity": p.get("entity", "")}
                    for p in capability["provided_by"]]
    period = evaluated.period
    return {"canvas": evaluated, "counts": evaluated.counts, "period_start": period.start,
            "period_last": period.end - timedelta(days=1), "period_days": data["period_days"]}, 200


@require_safe
def canvas_page(request: HttpRequest) -> HttpResponse:
    context, status = _context(request)
    return render(request, "insights/canvas.html", context, status=status)


@require_safe
def canvas_pdf(request: HttpRequest) -> HttpResponse:
    context, status = _context(request)
    if status != 200:
        return render(request, "insights/canvas.html", context, status=status)
    with open(finders.find(PRINT_CSS), encoding="utf-8") as css:
        context["print_css"] = css.read()
    # The PDF is read away from the portal: its links must carry the portal's address.
    for persona in context["canvas"].personas:
        for journey in persona["journeys"]:
            for capability in journey["capabilities"]:
                for provider in capability["providers"]:
                    if provider["url"]:
                        provider["url"] = request.build_absolute_uri(provider["url"])
    try:
        document = pdf.html_to_pdf(render_to_string("insights/canvas_print.html", context, request=request))
    except pdf.PdfUnavailable as exc:
        return render(request, "insights/canvas.html", {**context, "pdf_error": str(exc)}, status=503)
    response = HttpResponse(document, content_type="application/pdf")
    day = context["period_last"] + timedelta(days=1)
    response["Content-Disposition"] = f'attachment; filename="plinth-capability-canvas-{day:%Y-%m-%d}.pdf"'
    return response
