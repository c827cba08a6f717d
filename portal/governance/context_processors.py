"""Navigation values of the governance app: the Reviews count (one query) and whether the Audit link
shows (no query: the permission module decides from the user row)."""

from portal.accounts import permissions


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from .selectors import review_count

    return {"nav_review_count": review_count(user), "nav_may_read_audit": permissions.may_read_audit(user)}
