"""`Client` and `AsyncClient`: the entry points.

    from plinth_sdk import Client
    with Client() as plinth:            # PLINTH_URL / PLINTH_TOKEN, or the config file's profile
        model = plinth.entities.get("model:default/fraud-detector")
"""

from __future__ import annotations

from ._http import AsyncTransport, SyncTransport
from .models import Me


class Client(SyncTransport):
    """A synchronous client. `url`/`token` override `PLINTH_URL`/`PLINTH_TOKEN`, which override the
    config file's `profile`. `timeout` is per request; calls answered 429/502/503/504 (429 and failed
    connections for every method, the others for reads and deletes) are retried `max_retries` times with
    exponential backoff, honouring `Retry-After`. `verify`: False or a CA bundle path for TLS.

    Resources: `entities`, `locations`, `validation`, `search`, `approvals`, `audit`, `templates`,
    `runs`, `docs`, `account`."""

    def me(self) -> Me:
        """Who the token belongs to."""
        return self.account.me()


class AsyncClient(AsyncTransport):
    """The asyncio twin of `Client`: the same resources and arguments; every method returns an
    awaitable, every listing an async iterator. Use `async with AsyncClient() as plinth:`."""

    async def me(self) -> Me:
        return await self.account.me()
