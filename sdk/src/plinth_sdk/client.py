"""`Client` and `AsyncClient`: the entry points.

    from plinth_sdk import Client
    with Client() as plinth:            # PLINTH_URL / PLINTH_TOKEN, or the config file's profile
        model = plinth.entities.get("model:default/fraud-detector")
"""

from __future__ import annotations

from . import resources
from ._http import AsyncTransport, SyncTransport
from .models import Me


class _Resources:
    """The resources both clients carry. Attached here, above the transport, so the transport never
    imports the resources built on it."""

    def _attach(self) -> None:
        self.entities = resources.Entities(self)
        self.locations = resources.Locations(self)
        self.validation = resources.Validation(self)
        self.search = resources.Search(self)
        self.approvals = resources.Approvals(self)
        self.audit = resources.Audit(self)
        self.templates = resources.Templates(self)
        self.runs = resources.Runs(self)
        self.docs = resources.Docs(self)
        self.account = resources.Account(self)
        self.insights = resources.Insights(self)
        self.tokens = resources.Tokens(self)


class Client(_Resources, SyncTransport):
    """A synchronous client. `url`/`token` override `PLINTH_URL`/`PLINTH_TOKEN`, which override the
    config file's `profile`. `timeout` is per request; calls answered 429/502/503/504 (429 and failed
    connections for every method, the others for reads and deletes) are retried `max_retries` times with
    exponential backoff, honouring `Retry-After`. `verify`: False or a CA bundle path for TLS.

    Resources: `entities`, `locations`, `validation`, `search`, `approvals`, `audit`, `templates`,
    `runs`, `docs`, `account`, `insights`, `tokens`."""

    def me(self) -> Me:
        """Who the token belongs to."""
        return self.account.me()


class AsyncClient(_Resources, AsyncTransport):
    """The asyncio twin of `Client`: the same resources and arguments; every method returns an
    awaitable, every listing an async iterator. Use `async with AsyncClient() as plinth:`."""

    async def me(self) -> Me:
        return await self.account.me()
