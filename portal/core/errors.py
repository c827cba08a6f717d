"""The one shape of an error answer: the API's JSON envelope under /api/, the styled page elsewhere.

It lives below views, middleware and the request limits so each of them can answer an error without
importing the others (views imports limits; limits used to import views back, lazily)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def error_response(request: HttpRequest, status: int, title: str, message: str, **extra) -> HttpResponse:
    """The API's error envelope under /api/ (with `extra` fields), the error page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"status": status, "message": message, **extra}}, status=status)
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)
