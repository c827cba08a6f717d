"""Navigation count for the Reviews link: one query, only for signed-in users."""


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from .selectors import review_count

    return {"nav_review_count": review_count(user)}
