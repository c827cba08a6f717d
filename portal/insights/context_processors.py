"""Whether the main menu shows Insights (no query: the roles are read once per request already)."""

from portal.accounts import permissions


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_may_see_insights": permissions.may_see_insights(user)}
