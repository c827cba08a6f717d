"""`Client` and `AsyncClient`: the entry points.

    from plinth_sdk import Client
    with Client() as plinth:            # PLINTH_URL / PLINTH_TOKEN, or the config file's profile
        model = plinth.entities.get("model:default/fraud-detector")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import resources
from ._http import AsyncTransport, SyncTransport
from .models import Me

if TYPE_CHECKING:
    from . import _async

# Attribute -> resource class, the same on both clients (their types differ: see each client's annotations).
RESOURCES: dict[str, type[resources._Resource]] = {
    "entities": resources.Entities, "models": resources.Models, "locations": resources.Locations,
    "validation": resources.Validation,
    "search": resources.Search, "approvals": resources.Approvals, "audit": resources.Audit,
    "templates": resources.Templates, "runs": resources.Runs, "docs": resources.Docs,
    "account": resources.Account, "insights": resources.Insights, "tokens": resources.Tokens,
    "feedback": resources.Feedback,
    "lineage": resources.Lineage,
    "deployments": resources.Deployments,
    "scorecards": resources.Scorecards,
    "slos": resources.SLOs,
    "costs": resources.Costs,
    "incidents": resources.Incidents,
}


class _Resources:
    """The resources both clients carry. Attached here, above the transport, so the transport never
    imports the resources built on it. Their types are declared by each client: the same classes run
    on both, but on `AsyncClient` each method returns an awaitable (`_async.py`)."""

    def _attach(self) -> None:
        for attr, cls in RESOURCES.items():
            setattr(self, attr, cls(self))


class Client(_Resources, SyncTransport):
    """A synchronous client. `url`/`token` override `PLINTH_URL`/`PLINTH_TOKEN`, which override the
    config file's `profile`. `timeout` is per request; calls answered 429/502/503/504 (429 and failed
    connections for every method, the others for reads and deletes) are retried `max_retries` times with
    exponential backoff, honouring `Retry-After`. `verify`: False or a CA bundle path for TLS.

    Resources: `entities`, `models`, `locations`, `validation`, `search`, `approvals`, `audit`, `templates`,
    `runs`, `docs`, `account`, `insights`, `tokens`, `feedback`, `lineage`, `deployments`, `scorecards`,
    `slos`, `costs`, `incidents`."""

    entities: resources.Entities
    models: resources.Models
    locations: resources.Locations
    validation: resources.Validation
    search: resources.Search
    approvals: resources.Approvals
    audit: resources.Audit
    templates: resources.Templates
    runs: resources.Runs
    docs: resources.Docs
    account: resources.Account
    insights: resources.Insights
    tokens: resources.Tokens
    feedback: resources.Feedback
    lineage: resources.Lineage
    deployments: resources.Deployments
    scorecards: resources.Scorecards
    slos: resources.SLOs
    costs: resources.Costs
    incidents: resources.Incidents

    def me(self) -> Me:
        """Who the token belongs to."""
        return self.account.me()


class AsyncClient(_Resources, AsyncTransport):
    """The asyncio twin of `Client`: the same resources and arguments; every method returns an
    awaitable, every listing an async iterator. Use `async with AsyncClient() as plinth:`."""

    entities: _async.AsyncEntities
    models: _async.AsyncModels
    locations: _async.AsyncLocations
    validation: _async.AsyncValidation
    search: _async.AsyncSearch
    approvals: _async.AsyncApprovals
    audit: _async.AsyncAudit
    templates: _async.AsyncTemplates
    runs: _async.AsyncRuns
    docs: _async.AsyncDocs
    account: _async.AsyncAccount
    insights: _async.AsyncInsights
    tokens: _async.AsyncTokens
    feedback: _async.AsyncFeedback
    lineage: _async.AsyncLineage
    deployments: _async.AsyncDeployments
    scorecards: _async.AsyncScorecards
    slos: _async.AsyncSLOs
    costs: _async.AsyncCosts
    incidents: _async.AsyncIncidents

    async def me(self) -> Me:
        return await self.account.me()
