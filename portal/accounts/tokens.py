"""Token format and hashing. A token reads `plinth_<8-char prefix>_<secret>`."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_RE = re.compile(r"^plinth_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{32,64})$")


def generate() -> tuple[str, str, str]:
    """Return (token, prefix, sha256 hex)."""
    prefix = secrets.token_hex(4)
    token = f"plinth_{prefix}_{secrets.token_urlsafe(32)}"
    return token, prefix, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(token: str) -> str | None:
    """Return the prefix of a well-formed token, else None."""
    match = TOKEN_RE.match(token)
    return match.group(1) if match else None
