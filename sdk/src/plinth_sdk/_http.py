"""The transport shared by `Client` and `AsyncClient`: one `Call` per API operation, retries with
backoff, error mapping, cursor pagination and polling.

Resources (`resources.py`) describe each call once as a `Call`; a client *runs* it. The synchronous
client returns the parsed result, the asynchronous one an awaitable of it — so every resource serves
both clients and the two cannot drift apart. The same holds for pagination (an iterator or an async
iterator) and for waiting (a blocking loop or an async one)."""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from . import errors
from .config import resolve

if TYPE_CHECKING:
    import httpx

__all__ = ["ENDPOINTS", "Call", "Endpoint", "endpoint"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "plinth-sdk/0.1.0"
# The `plinth` command says so too: the portal's usage analytics count SDK and CLI calls apart.
CLI_USER_AGENT = f"plinth-cli/0.1.0 {USER_AGENT}"
NDJSON = "application/x-ndjson"


class _CutOff(Exception):
    """A stream that ended without its last line (`{"nextCursor": null, …}`)."""


class _Stream:
    """Reads one NDJSON stream of the API (`GET /api/v1/entities/export`): entity lines, checkpoints
    (`{"nextCursor": "…"}`) and the last line (`{"nextCursor": null, "count": n}`, or with a cursor
    when the server hands over to a next request). Keeps what a resumed stream
    needs: the last checkpoint, and the keys of the items yielded since it — the stream repeats those
    after a resume, and they are skipped (by key, not by count: an entity deleted in between would
    shift a count). Memory: one chunk of keys."""

    def __init__(self, call: Call, key: Callable[[dict], Any]):
        self.call, self.key = call, key
        self.seen: set = set()
        self.done = False
        self.progressed = False
        self.handed_over = False

    def accept(self, line: bytes) -> dict | None:
        """The item a line carries (None for checkpoints and repeats)."""
        import json

        try:
            doc = json.loads(line)
        except ValueError:
            raise errors.BadResponse(f"a line of the stream is not JSON: {line[:80]!r}", status=200) from None
        if not isinstance(doc, dict):
            raise errors.BadResponse(f"a line of the stream is not a JSON object: {line[:80]!r}", status=200)
        if "nextCursor" in doc and "kind" not in doc:
            if doc["nextCursor"] is None:
                self.done = True
            else:
                self.call = self.call.with_params(cursor=doc["nextCursor"])
                self.seen.clear()
                self.progressed = True
                # A last line with a cursor: the server ended this response on purpose (its time
                # budget); the next one continues there.
                self.handed_over = "count" in doc
            return None
        key = self.key(doc)
        if key is not None:
            if key in self.seen:
                return None
            self.seen.add(key)
        return doc


def _lines(chunks: Iterable[bytes]):
    """Complete lines of a byte stream. The server ends every line with a newline: a last piece
    without one is a line cut off with the connection (a server that closes instead of ending a
    chunked body cuts cleanly), dropped here; the missing end line then says the stream broke."""
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk if rest else chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            if part:
                yield part


async def _alines(chunks):
    rest = b""
    async for chunk in chunks:
        parts = (rest + chunk if rest else chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            if part:
                yield part


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API, by its OpenAPI `operationId`. The coverage test (tests/sdk) checks
    every operation of `/api/schema/` against this registry."""

    operation_id: str
    method: str
    path: str  # as in the schema: /api/v1/entities/by-name/{kind}/{namespace}/{name}

    def call(self, parse: Callable[[Any], Any] = lambda body: body, *, params: dict | None = None,
             json: Any = None, accept: Iterable[int] = (), files: dict | None = None, data: dict | None = None,
             **path_params: Any) -> Call:
        from urllib.parse import quote

        path = self.path.format(**{k: quote(str(v), safe="") for k, v in path_params.items()})
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != [] and v is not False}
        return Call(self, path, clean, json, parse, frozenset(accept), files, data)


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(operation_id: str, method: str, path: str) -> Endpoint:
    ep = Endpoint(operation_id, method, path)
    ENDPOINTS[operation_id] = ep
    return ep


@dataclass(frozen=True)
class Call:
    endpoint: Endpoint
    path: str
    params: dict
    json: Any
    parse: Callable[[Any], Any]
    accept: frozenset[int] = field(default_factory=frozenset)  # error statuses whose body is a result
    files: dict | None = None  # multipart uploads: {field: (file name, Path opened per attempt, content type)}
    data: dict | None = None  # the multipart form's other fields

    def with_params(self, **params: Any) -> Call:
        return Call(self.endpoint, self.path, {**self.params, **params}, self.json, self.parse, self.accept,
                    self.files, self.data)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def load_httpx():
    """httpx, without its own command line: `httpx/__init__` imports `httpx._main` (Rich, Pygments,
    Click) for the `httpx` CLI, a third of its import time, which a client never uses. Refused only
    during this import, so a later `import httpx._main` still works."""
    if "httpx" in sys.modules:
        return sys.modules["httpx"]
    blocked = "httpx._main" not in sys.modules
    if blocked:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        if blocked and sys.modules.get("httpx._main") is None:
            del sys.modules["httpx._main"]
    return httpx


def _request_id(response: httpx.Response) -> str | None:
    return response.headers.get("X-Request-ID")


def _decode(response: httpx.Response, call: Call) -> Any:
    """The parsed body of an answer, or the exception it stands for."""
    status = response.status_code
    if 300 <= status < 400:
        where = response.headers.get("Location", "elsewhere")
        raise errors.BadResponse(f"the server redirected to {where} (HTTP {status}); is the URL the portal's "
                                 "address?", status=status, request_id=_request_id(response))
    if status == 204:
        return None
    ctype = response.headers.get("content-type", "")
    try:
        body = response.json()
    except ValueError:
        kind = ctype.split(";")[0] or "no content type"
        raise errors.BadResponse(
            f"the server answered HTTP {status} with a body that is not JSON ({kind}); is the URL the "
            f"portal's address?", status=status, request_id=_request_id(response)) from None
    if status >= 400 and status not in call.accept:
        raise errors.api_error(status, body, _request_id(response))
    return body


def _shape(body: Any) -> str:
    """What a JSON body is, for a message: `a JSON array`, `null`, `an object without 'username'`."""
    if body is None:
        return "null"
    if isinstance(body, dict):
        return "a JSON object" if body else "an empty JSON object"
    return {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean"}.get(type(body), "a JSON number")


def _shaped(parse: Callable[[Any], Any], body: Any, response: httpx.Response | None = None) -> Any:
    """`parse(body)`; JSON of another shape than the API's (`[1, 2]`, `"hello"`, `null`, an object
    without the fields a result needs) is a `BadResponse`, not a KeyError from deep inside a model."""
    try:
        return parse(body)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        missing = f" without {exc}" if isinstance(exc, KeyError) and isinstance(body, dict) and body else ""
        what = f"a JSON object{missing}" if missing else _shape(body)
        status = response.status_code if response is not None else 200
        raise errors.BadResponse(f"the server answered HTTP {status} with {what}, which is not the API's JSON; "
                                 "is the URL the portal's address?", status=status,
                                 request_id=_request_id(response) if response is not None else None) from None


@dataclass
class Options:
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_retries: int = 4
    backoff: float = 0.5  # first wait; doubled each retry, with jitter
    max_backoff: float = 30.0
    verify: bool | str = True


class _Base:
    """Settings and what both clients share."""

    def __init__(self, url: str | None = None, token: str | None = None, *, profile: str | None = None,
                 timeout: float = 30.0, max_retries: int = 4, backoff: float = 0.5, verify: bool | str = True,
                 transport: Any = None, user_agent: str | None = None):
        settings = resolve(url, token, profile)
        self.user_agent = user_agent or USER_AGENT
        self.url, self.token, self.profile = settings.url, settings.token, settings.profile
        self.options = Options(timeout=timeout, max_retries=max_retries, backoff=backoff, verify=verify)
        self._transport = transport
        self._attach()

    def _attach(self) -> None:
        """Attach what is built on this transport (the clients' resources, `plinth_sdk.client`)."""

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _httpx_kwargs(self) -> dict:
        httpx = load_httpx()

        kwargs: dict[str, Any] = {
            # A plain-http URL needs no CA bundle (loading certifi's costs the CLI ~20 ms); redirects
            # are never followed, so no request can move to https. Schemes are compared in lower case:
            # `HTTPS://…` is https too, and verified.
            "base_url": self.url, "headers": self._headers(),
            "verify": self.options.verify if self.url.lower().startswith("https:") else False,
            "timeout": httpx.Timeout(self.options.timeout, connect=min(self.options.connect_timeout, self.options.timeout)),
            "follow_redirects": False,
        }
        if self._transport is not None:
            kwargs["transport"] = self._transport
        return kwargs

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response) if response is not None else None
        if hinted is not None:
            return min(hinted, self.options.max_backoff)
        base = self.options.backoff * (2 ** attempt)
        return min(base * (0.5 + random.random() / 2), self.options.max_backoff)  # noqa: S311 (jitter)

    def _retryable(self, call: Call, response: httpx.Response | None, attempt: int) -> bool:
        if attempt >= self.options.max_retries:
            return False
        if response is None:  # never reached the server: safe for any method
            return True
        if response.status_code == 429:  # refused before it ran: safe for any method
            return True
        return response.status_code in RETRY_STATUSES and call.endpoint.method in IDEMPOTENT

    def _retry_transport(self, call: Call, exc: Exception, attempt: int) -> bool:
        """A failed connection never reached the server (any method may go again); a broken answer
        may have run the request, so only idempotent methods are repeated. TLS failures are final, and
        so is a request that could not be written (a header value HTTP refuses)."""
        httpx = load_httpx()

        error = self._transport_error(exc)
        if attempt >= self.options.max_retries or not isinstance(error, errors.UnreachableError) \
                or isinstance(error, errors.TLSError):
            return False
        return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) or call.endpoint.method in IDEMPOTENT

    def _transport_error(self, exc: Exception) -> errors.PlinthError:
        import ssl

        httpx = load_httpx()

        if isinstance(exc, httpx.LocalProtocolError):
            # The request could not even be written: a header value HTTP refuses. Its text quotes the
            # header (the token's, perhaps), so it is not shown.
            return errors.ConfigError(f"cannot send a request to {self.url}: a header value holds characters "
                                      "HTTP does not allow")
        text = str(exc) or type(exc).__name__
        if self.token:
            text = text.replace(self.token, "…")
        if isinstance(exc, httpx.TimeoutException):
            return errors.TimeoutError(f"{self.url} did not answer within {self.options.timeout:g} s")
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(cause):
                return errors.TLSError(f"TLS error talking to {self.url}: {text}")
            cause = cause.__cause__ or cause.__context__
        return errors.UnreachableError(f"cannot reach {self.url}: {text}")

    @contextlib.contextmanager
    def _request_args(self, call: Call):
        """The arguments of one attempt at `call`. An upload's files are named by path in the `Call`
        and opened here, for this attempt, and closed after it: the file is streamed from disk, and a
        `Call` built now and run later (an `AsyncClient` coroutine) still finds it."""
        args: dict[str, Any] = {"method": call.endpoint.method, "url": call.path, "params": call.params}
        if call.json is not None:
            args["json"] = call.json
        with contextlib.ExitStack() as opened:
            if call.files is not None:
                args["files"] = {key: (name, opened.enter_context(open(source, "rb")) if isinstance(source, PurePath)
                                       else source, ctype)
                                 for key, (name, source, ctype) in call.files.items()}
                args["data"] = call.data or {}
            yield args

    def _stream_args(self, call: Call) -> dict:
        return {"method": call.endpoint.method, "url": call.path, "params": call.params,
                "headers": {"Accept": f"{NDJSON}, application/json"}}

    def _stream_error(self, exc: Exception) -> errors.PlinthError:
        if isinstance(exc, _CutOff):
            return errors.UnreachableError(f"{exc}, {self.options.max_retries} times in a row")
        return self._transport_error(exc)

    def _stream_failed(self, exc: Exception, failures: int) -> bool:
        """Whether a stream broken by `exc` is taken up again from its last checkpoint: any break
        (a read is idempotent), `max_retries` times without progress; TLS failures are final."""
        if isinstance(exc, _CutOff):
            return failures < self.options.max_retries
        error = self._transport_error(exc)
        return (failures < self.options.max_retries and isinstance(error, errors.UnreachableError)
                and not isinstance(error, errors.TLSError))

    @staticmethod
    def _final(call: Call, response: httpx.Response) -> Any:
        body = _decode(response, call)
        if response.status_code >= 500:  # a 5xx with a JSON body that is no error envelope
            raise errors.api_error(response.status_code, body, _request_id(response))
        return _shaped(call.parse, body, response)

    @staticmethod
    def _page(body: Any, items: str) -> list:
        """The items of one page; a `BadResponse` when the body is not a page of the API."""
        if not isinstance(body, dict) or not isinstance(body.get(items), list):
            raise errors.BadResponse(f"the server answered {_shape(body)}, not a page of the API's JSON (no "
                                     f"'{items}' list); is the URL the portal's address?", status=200)
        return body[items]


class SyncTransport(_Base):
    _http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            httpx = load_httpx()

            self._http = httpx.Client(**self._httpx_kwargs())
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, call: Call) -> Any:
        httpx = load_httpx()

        attempt = 0
        while True:
            response = None
            try:
                with self._request_args(call) as args:
                    response = self.http.request(**args)
            except httpx.TransportError as exc:
                if not self._retry_transport(call, exc, attempt):
                    raise self._transport_error(exc) from None
            if response is not None and not (response.status_code in RETRY_STATUSES
                                             and self._retryable(call, response, attempt)):
                return self._final(call, response)
            time.sleep(self._delay(attempt, response))
            attempt += 1

    def _pages(self, call: Call, item: Callable[[dict], Any], *, items: str = "items",
               next_of: Callable[[dict], Any] = lambda body: (body.get("pageInfo") or {}).get("nextCursor"),
               cursor_param: str = "cursor", limit: int | None = None):
        """Each item of each page, one page in memory at a time; `limit` stops early."""
        yielded = 0
        current = call
        while True:
            body = self._run(current)
            for raw in self._page(body, items):
                if limit is not None and yielded >= limit:
                    return
                yield _shaped(item, raw)
                yielded += 1
            nxt = _shaped(next_of, body)
            if nxt is None or (limit is not None and yielded >= limit):
                return
            current = current.with_params(**{cursor_param: nxt})

    def _stream(self, call: Call, item: Callable[[dict], Any], *, key: Callable[[dict], Any]):
        """Each item of an NDJSON stream as it arrives (constant memory); a broken connection is taken
        up again from the last checkpoint without repeating an item."""
        httpx = load_httpx()

        stream, failures = _Stream(call, key), 0
        while True:
            try:
                with self.http.stream(**self._stream_args(stream.call)) as response:
                    if response.status_code != 200:
                        response.read()
                        if response.status_code in RETRY_STATUSES and self._retryable(stream.call, response, failures):
                            time.sleep(self._delay(failures, response))
                            failures += 1
                            continue
                        self._final(stream.call, response)  # raises the error the answer stands for
                        raise errors.BadResponse(f"the server answered HTTP {response.status_code} to a stream",
                                                 status=response.status_code, request_id=_request_id(response))
                    for line in _lines(response.iter_bytes()):
                        doc = stream.accept(line)
                        if doc is not None:
                            yield _shaped(item, doc)
                        elif stream.progressed:
                            stream.progressed, failures = False, 0
                    if stream.done:
                        return
                    if stream.handed_over:
                        stream.handed_over = False
                        continue
                    raise _CutOff(f"the stream from {self.url} ended early")
            except (httpx.TransportError, _CutOff) as exc:
                if not self._stream_failed(exc, failures):
                    raise self._stream_error(exc) from None
                time.sleep(self._delay(failures, None))
                failures += 1

    def _find(self, call: Call, item: Callable[[dict], Any], match: Callable[[Any], bool], *, missing: str) -> Any:
        """The first item of a paged list that `match`es; `NotFoundError(missing)` when none does."""
        for value in self._pages(call, item):
            if match(value):
                return value
        raise errors.NotFoundError(404, missing)

    def _poll(self, call: Call, done: Callable[[Any], bool], *, timeout: float | None, interval: float,
              on_update: Callable[[Any], None] | None, what: str) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = interval
        while True:
            value = self._run(call)
            if on_update is not None:
                on_update(value)
            if done(value):
                return value
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.WaitTimeout(f"{what} did not finish within {timeout:g} s", last=value)
            sleep = pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(sleep)
            pause = min(pause * 1.5, 10.0)

    @staticmethod
    def _then(value: Any, fn: Callable[[Any], Any]) -> Any:
        return fn(value)


class AsyncTransport(_Base):
    _http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            httpx = load_httpx()

            self._http = httpx.AsyncClient(**self._httpx_kwargs())
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _run(self, call: Call) -> Any:
        import asyncio

        httpx = load_httpx()

        attempt = 0
        while True:
            response = None
            try:
                with self._request_args(call) as args:
                    response = await self.http.request(**args)
            except httpx.TransportError as exc:
                if not self._retry_transport(call, exc, attempt):
                    raise self._transport_error(exc) from None
            if response is not None and not (response.status_code in RETRY_STATUSES
                                             and self._retryable(call, response, attempt)):
                return self._final(call, response)
            await asyncio.sleep(self._delay(attempt, response))
            attempt += 1

    async def _pages(self, call: Call, item: Callable[[dict], Any], *, items: str = "items",
                     next_of: Callable[[dict], Any] = lambda body: (body.get("pageInfo") or {}).get("nextCursor"),
                     cursor_param: str = "cursor", limit: int | None = None):
        yielded = 0
        current = call
        while True:
            body = await self._run(current)
            for raw in self._page(body, items):
                if limit is not None and yielded >= limit:
                    return
                yield _shaped(item, raw)
                yielded += 1
            nxt = _shaped(next_of, body)
            if nxt is None or (limit is not None and yielded >= limit):
                return
            current = current.with_params(**{cursor_param: nxt})

    async def _stream(self, call: Call, item: Callable[[dict], Any], *, key: Callable[[dict], Any]):
        """The async iterator twin of `SyncTransport._stream`."""
        import asyncio

        httpx = load_httpx()

        stream, failures = _Stream(call, key), 0
        while True:
            try:
                async with self.http.stream(**self._stream_args(stream.call)) as response:
                    if response.status_code != 200:
                        await response.aread()
                        if response.status_code in RETRY_STATUSES and self._retryable(stream.call, response, failures):
                            await asyncio.sleep(self._delay(failures, response))
                            failures += 1
                            continue
                        self._final(stream.call, response)
                        raise errors.BadResponse(f"the server answered HTTP {response.status_code} to a stream",
                                                 status=response.status_code, request_id=_request_id(response))
                    async for line in _alines(response.aiter_bytes()):
                        doc = stream.accept(line)
                        if doc is not None:
                            yield _shaped(item, doc)
                        elif stream.progressed:
                            stream.progressed, failures = False, 0
                    if stream.done:
                        return
                    if stream.handed_over:
                        stream.handed_over = False
                        continue
                    raise _CutOff(f"the stream from {self.url} ended early")
            except (httpx.TransportError, _CutOff) as exc:
                if not self._stream_failed(exc, failures):
                    raise self._stream_error(exc) from None
                await asyncio.sleep(self._delay(failures, None))
                failures += 1

    async def _find(self, call: Call, item: Callable[[dict], Any], match: Callable[[Any], bool], *,
                    missing: str) -> Any:
        async for value in self._pages(call, item):
            if match(value):
                return value
        raise errors.NotFoundError(404, missing)

    async def _poll(self, call: Call, done: Callable[[Any], bool], *, timeout: float | None, interval: float,
                    on_update: Callable[[Any], None] | None, what: str) -> Any:
        import asyncio

        deadline = None if timeout is None else time.monotonic() + timeout
        pause = interval
        while True:
            value = await self._run(call)
            if on_update is not None:
                on_update(value)
            if done(value):
                return value
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.WaitTimeout(f"{what} did not finish within {timeout:g} s", last=value)
            await asyncio.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 1.5, 10.0)

    @staticmethod
    async def _then(value: Any, fn: Callable[[Any], Any]) -> Any:
        result = fn(await value)
        if hasattr(result, "__await__"):
            result = await result
        return result
