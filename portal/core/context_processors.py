"""Values every page's navigation needs."""

from __future__ import annotations


def navigation(request) -> dict:
    return {"request_id": getattr(request, "request_id", "")}
