"""Navigation value of the deployments app: whether the Reviews pages link the drift list (no query of
its own: the permission module reads the user's roles once per request)."""

from portal.accounts import permissions


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_may_see_drift": permissions.may_see_drift_list(user)}
