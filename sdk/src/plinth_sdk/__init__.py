"""Plinth's Python SDK: `Client`, `AsyncClient`, typed results (`plinth_sdk.models`) and errors
(`plinth_sdk.errors`). Names are imported on first use, so `import plinth_sdk` stays cheap for the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["APIError", "AsyncClient", "Client", "NotFoundError", "PlinthError", "WaitTimeout", "__version__"]

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .errors import APIError, NotFoundError, PlinthError, WaitTimeout

_LAZY = {"Client": "client", "AsyncClient": "client", "APIError": "errors", "NotFoundError": "errors",
         "PlinthError": "errors", "WaitTimeout": "errors"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'plinth_sdk' has no attribute {name!r}")
