"""Exit codes and one-line messages for every failure (documented in sdk/docs/cli.md)."""

from __future__ import annotations

OK, CHECK_FAILED, USAGE, AUTH, NOT_FOUND, CONFLICT, UNREACHABLE = 0, 1, 2, 3, 4, 5, 6


class CheckFailed(Exception):
    """A command ran but what it checked failed (exit 1); the message is already shown or is this."""


class InputError(Exception):
    """The user's input (a file, a reference, a value) is wrong (exit 2)."""


def exit_code_for(exc: BaseException) -> int:
    from .. import errors

    if isinstance(exc, CheckFailed | errors.WaitTimeout):
        return CHECK_FAILED
    if isinstance(exc, InputError | errors.ConfigError | errors.ValidationError | ValueError):
        return USAGE
    if isinstance(exc, errors.AuthenticationError | errors.PermissionDeniedError):
        return AUTH
    if isinstance(exc, errors.NotFoundError):
        return NOT_FOUND
    if isinstance(exc, errors.ConflictError):
        return CONFLICT
    if isinstance(exc, errors.UnreachableError | errors.BadResponse | errors.ServerError | errors.RateLimitedError):
        return UNREACHABLE
    if isinstance(exc, errors.APIError):
        return CHECK_FAILED
    return CHECK_FAILED


def one_line(exc: BaseException) -> str:
    from .. import errors

    if isinstance(exc, errors.AuthenticationError):
        text = (f"{exc.message} — the token is missing, wrong, expired or revoked; run `plinth login` "
                "or set PLINTH_TOKEN")
    elif isinstance(exc, errors.APIError):
        text = exc.one_line()
        if exc.status >= 500:
            text = f"the server failed (HTTP {exc.status}): {text}"
            if exc.request_id:
                text += f" (request id {exc.request_id})"
    else:
        text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the message held
