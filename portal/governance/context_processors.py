"""Navigation counts for the Reviews link (filled in by the governance app)."""


def navigation(request) -> dict:
    return {}
