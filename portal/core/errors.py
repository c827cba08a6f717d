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


# PostgreSQL text and jsonb cannot hold NUL: a NUL reaching a query is a 500 there (and passes on SQLite),
# so every input surface refuses it up front with this message, naming where (middleware, API parsers).
NUL_MESSAGE = "Null characters are not allowed."


def nul_field(data) -> str | None:
    """The first key of a QueryDict (query string or form) whose name or a value holds a NUL, shown
    with the NUL escaped; None when there is none."""
    for key, values in data.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\x00")
    return None
