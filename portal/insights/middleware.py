"""Page views and API calls, captured after the view answered (portal/insights/capture.py).

Nothing here queries the database: the user is the one the authentication layers already loaded (a
request whose user was never looked at is not counted), the subject is the URL pattern's name, and the
event goes to the capture buffer."""

from __future__ import annotations

from django.utils.functional import empty

from . import capture
from .models import Client, EventType

_SKIP_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics", "/csp-report/", "/favicon")


def _loaded_user(request):
    user = getattr(request, "user", None)
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is empty:
        return None  # still lazy: loading it here would be the extra query we promise not to make
    if user is None or not user.is_authenticated:
        return None
    return user


class AnalyticsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if capture.enabled():
            try:
                self._capture(request, response)
            except Exception:  # analytics never turns a good answer into an error page
                capture.COUNTERS.drop()
        return response

    def _capture(self, request, response) -> None:
        path = request.path
        if path.startswith(_SKIP_PREFIXES):
            return
        user = _loaded_user(request)
        if user is None:
            return
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "unmatched"
        api = path.startswith("/api/")
        data = {"status": response.status_code, "method": request.method}
        if api:
            client = capture.client_from_user_agent(request.headers.get("User-Agent", ""), api=True)
            capture.record(EventType.API_CALL, user=user, subject=route, client=client, data=data)
            return
        # Pages people look at: successful GETs of HTML (not htmx fragments, not downloads).
        if request.method != "GET" or response.status_code != 200:
            return
        if not response.get("Content-Type", "").startswith("text/html") or request.headers.get("HX-Request"):
            return
        capture.record(EventType.PAGE_VIEW, user=user, subject=route, client=Client.BROWSER, data=data)
