"""The insights app's own page in the account area: the per-user analytics opt-out."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal.core.limits import FORM, body_limit

from . import capture, selectors, services


@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        choice = request.POST.get("choice")
        if choice == "out":
            services.analytics_opt_out(user=request.user)
            messages.success(request, "You are no longer counted individually.")
        elif choice == "in":
            services.analytics_opt_in(user=request.user)
            messages.success(request, "You are counted individually again.")
        else:
            return HttpResponseBadRequest("choice: must be 'out' or 'in'")
        return redirect("insights-core:preferences")
    context = {"opted_out": selectors.is_opted_out(request.user), "analytics_on": capture.enabled()}
    response = render(request, "insights/preferences.html", context)
    response["Cache-Control"] = "no-store"
    return response
