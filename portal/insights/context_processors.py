"""Whether the main menu shows Insights and the user menu the capability canvas (no query: the roles
are read once per request already; the canvas rule is a callable, evaluated only where drawn)."""

from functools import partial

from portal.accounts import permissions


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_may_see_insights": permissions.may_see_insights(user),
            "nav_may_see_canvas": partial(permissions.may_see_canvas, user)}
