"""The one place that turns a client method into an HTTP exchange.

Every request of every client goes through :class:`APIClient`: it resolves the key (from the
environment, masked everywhere), builds the request (URL, auth, body), sends it through the
sender chosen in :mod:`.transport` (timeouts and pool limits live there), maps error bodies to
:mod:`.errors`, counts usage, records a metric event and hands the headers to the resilience
layer. Responses are always ``httpx.Response`` objects, whichever sender produced them.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from json import JSONEncoder
from typing import Any, ClassVar, Protocol, Self, TypedDict, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from opusclip_lib.api._headers import request_id_of
from opusclip_lib.api._urls import URLBuilder, encode_query
from opusclip_lib.api.errors import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    MalformedResponseError,
    error_from_response,
)
from opusclip_lib.api.transport import Outgoing, Sender, TransportName, make_sender
from opusclip_lib.errors import ConfigurationError
from opusclip_lib.metrics import Recorder
from opusclip_lib.observability.instrument import http_end, http_start
from opusclip_lib.resilience.cache import request_key
from opusclip_lib.resilience.fallback import Fallback

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"opusclip-lib/{version('opusclip-lib')} httpx/{httpx.__version__}"
MASK = "**********"
#: JSON bodies as httpx encodes them; one encoder, not one per ``json.dumps`` call.
JSON_BODY = JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class ResilienceHook(Protocol):
    """What a client needs from ``opusclip_lib.resilience.Resilience`` (or any stand-in)."""

    async def call(self, operation: Callable[[], Awaitable[T]], *, cache_key: str | None = None,
                   cost: float = 1) -> T | Fallback[T]: ...

    def observe(self, headers: Mapping[str, str]) -> None: ...


async def gather_or_raise(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` concurrently (a TaskGroup: the first failure cancels the rest, nothing leaks)
    and raise that failure as itself, so ``except RateLimitError`` works as with one call."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except ExceptionGroup as failures:
        first = failures.exceptions[0]
        if isinstance(first, Exception):
            raise first from failures
        raise
    return [task.result() for task in tasks]


def summarize(exc: ValidationError) -> str:
    """Where a body broke its model, without echoing the body (it may be long, or private)."""
    first = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:3]]
    return f"{exc.error_count()} error(s): {'; '.join(first)}"


class ClientOptions(TypedDict, total=False):
    """The keyword options every client takes (see :class:`APIClient`)."""

    base_url: str | None
    transport: httpx.AsyncBaseTransport | TransportName | None
    timeout: httpx.Timeout | float | None
    limits: httpx.Limits | None
    recorder: Recorder | None
    resilience: ResilienceHook | None


@dataclass(slots=True)
class Usage:
    """Running totals for one client: what a notebook prints after a batch.

    ``spent`` holds the provider's units (``quota``, ``tokens``, ``prompt_tokens``, ``credits``,
    ``characters``); ``cost`` is the one named by ``unit``. ``cached`` counts 304 answers.
    """

    unit: str
    calls: int = 0
    failures: int = 0
    cached: int = 0
    spent: Counter[str] = field(default_factory=Counter)

    @property
    def cost(self) -> float:
        return self.spent[self.unit]


def exchange_deadline_s(timeout: httpx.Timeout) -> float | None:
    """The most one exchange may take whatever carries it: the sum of its phase limits (waiting
    for a pooled connection, connecting, sending, waiting for the answer), or ``None`` if any
    phase is unbounded. It is set only around a sender whose own timeouts do not bound the
    exchange (``Sender.bounds``): an in-process transport (``httpx.ASGITransport`` over the
    sandbox) enforces none of them, so without it a hung handler would hang the call; aiohttp's
    bound a request without a body, and a timer per call for nothing costs CPU."""
    total = 0.0
    for phase in (timeout.pool, timeout.connect, timeout.write, timeout.read):
        if phase is None:
            return None
        total += phase
    return total


def resolve_key(api_key: str | SecretStr | None, variable: str, provider: str) -> SecretStr:
    """The key passed in, else the environment variable; a clear error naming it if neither."""
    value = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    value = value or os.environ.get(variable)
    if not value:
        raise ConfigurationError(
            f"{provider}: no API key: set the environment variable {variable} "
            "(or pass api_key= in tests)")
    return SecretStr(value)


class APIClient:
    """Base of the four clients: ``async with Client() as client`` inside the running loop.

    Subclasses set the class attributes and implement :meth:`_auth_headers` or
    :meth:`_auth_params`, and :meth:`_spend` for what a call costs.

    ``transport`` is a name from :mod:`.transport` (``"aiohttp"``, ``"httpx-aiohttp"``,
    ``"httpx"``; default ``OPUSCLIP_HTTP_TRANSPORT`` or aiohttp), or an httpx transport instance
    (``httpx.MockTransport``, ``httpx.ASGITransport(sandbox_app)``), which the client then owns
    and closes, as ``httpx.AsyncClient`` does. ``timeout`` and ``limits`` default to the
    provider's numbers on each subclass.
    """

    provider: ClassVar[str]
    key_variable: ClassVar[str]
    default_base_url: ClassVar[str]
    default_timeout: ClassVar[httpx.Timeout]
    default_limits: ClassVar[httpx.Limits]
    cost_unit: ClassVar[str]

    def __init__(self, api_key: str | SecretStr | None = None, *, base_url: str | None = None,
                 transport: httpx.AsyncBaseTransport | TransportName | None = None,
                 timeout: httpx.Timeout | float | None = None,
                 limits: httpx.Limits | None = None, recorder: Recorder | None = None,
                 resilience: ResilienceHook | None = None) -> None:
        self._api_key = resolve_key(api_key, self.key_variable, self.provider)
        self._url = URLBuilder(base_url or self.default_base_url)
        self.base_url = str(self._url.base)
        self.timeout = self.default_timeout if timeout is None else httpx.Timeout(timeout)
        self.deadline_s = exchange_deadline_s(self.timeout)
        self.limits = limits or self.default_limits
        self.recorder = recorder
        self.resilience = resilience
        self.usage = Usage(self.cost_unit)
        self._transport_choice = transport
        self._sender: Sender | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fixed: tuple[dict[str, str], str] | None = None
        self.streams_open = 0  # streamed responses not yet closed (see ._streaming)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self._api_key!r})"

    async def __aenter__(self) -> Self:
        if self._sender is not None:
            raise ClientStateError(f"{type(self).__name__} is already open",
                                   provider=self.provider)
        self._loop = asyncio.get_running_loop()
        self._sender = make_sender(self._transport_choice, limits=self.limits,
                                   timeout=self.timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        sender, self._sender = self._sender, None
        self._loop = None
        if sender is not None:
            await sender.aclose()

    # --- hooks for subclasses ---------------------------------------------------------------

    def _auth_headers(self, secret: str) -> dict[str, str]:
        return {}

    def _auth_params(self, secret: str) -> dict[str, str]:
        return {}

    def _spend(self, operation: str, response: httpx.Response, result: object) -> dict[str, float]:
        """Units one answered call spent (``result`` is ``None`` when it failed)."""
        return {}

    # --- the exchange -----------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        secret = self._api_key.get_secret_value()
        return text.replace(secret, MASK) if secret in text else text

    def _open_sender(self) -> Sender:
        name = type(self).__name__
        if self._sender is None:
            raise ClientStateError(f"{name} is not open: use `async with {name}() as client:`",
                                   provider=self.provider)
        if asyncio.get_running_loop() is not self._loop:
            raise ClientStateError(
                f"{name} was opened in another event loop; its connections belong to that loop. "
                f"Create one client per event loop, inside it, with `async with`.",
                provider=self.provider)
        return self._sender

    def _fixed_parts(self) -> tuple[dict[str, str], str]:
        """The headers and auth query every request carries, built once: the key never changes."""
        if self._fixed is None:
            secret = self._api_key.get_secret_value()
            self._fixed = ({"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate",
                            **self._auth_headers(secret)},
                           urlencode(self._auth_params(secret)))
        return self._fixed

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None, json: Any = None,
                 files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
                 ) -> Outgoing:
        """The request, encoded once here whatever sends it (JSON as httpx encodes it; ``files``
        as httpx's multipart form: a sequence of pairs repeats a field, as ``name[]`` wants)."""
        fixed_headers, auth_query = self._fixed_parts()
        query = "&".join(filter(None, (encode_query(params) if params else "", auth_query)))
        url = self._url.encoded(path, query)
        all_headers = {**fixed_headers, **headers} if headers else dict(fixed_headers)
        content = None
        if json is not None:
            content = JSON_BODY.encode(json).encode()
            all_headers["Content-Type"] = "application/json"
        elif files:
            form = httpx.Request(method, str(url), files=files)  # httpx's multipart encoder
            content = form.read()
            all_headers["Content-Type"] = form.headers["Content-Type"]
        return Outgoing(method, url, all_headers, content)

    def _cache_key(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                   body: Any = None) -> str | None:
        """A hash of the request without its key; ``None`` (no lookup) when there is no cache."""
        if self.resilience is None:
            return None
        return request_key(method, f"{self.base_url}{path}", params, body)

    async def _call(self, operation: Callable[[], Awaitable[T]], *, cache_key: str | None = None,
                    cost: float = 1) -> T | Fallback[T]:
        """Run one logical call, through the resilience policy when the client has one."""
        if self.resilience is None:
            return await operation()
        return await self.resilience.call(operation, cache_key=cache_key, cost=cost)

    async def _exchange(self, operation: str, request: Outgoing,
                        parse: Callable[[httpx.Response], T]) -> T:
        """Send, read, map errors, parse; count and record the call whatever happens."""
        sender = self._open_sender()
        start = self.recorder.now() if self.recorder is not None else 0.0
        response: httpx.Response | None = None
        result: T | None = None
        error: BaseException | None = None
        traced = http_start(self.provider, operation, request.method, request.url)
        deadline = None if sender.bounds(request) else asyncio.timeout(self.deadline_s)
        try:
            try:
                if deadline is None:
                    response = await sender.send(request)
                else:
                    async with deadline:
                        response = await sender.send(request)
            except httpx.TransportError as exc:
                # "from None": the transport's own exceptions may quote the URL, key and all,
                # and a chained cause is printed in every traceback; ours says it, redacted.
                kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else (
                    APIConnectionError)
                raise kind(self._describe_transport_error(exc, request),
                           provider=self.provider) from None
            except TimeoutError:
                if deadline is None or not deadline.expired():
                    raise
                raise APITimeoutError(
                    f"no answer from {request.url.host} within {self.deadline_s:g} s (the "
                    "client's timeout: pool + connect + write + read)",
                    provider=self.provider) from None
            if self.resilience is not None:
                self.resilience.observe(response.headers)
            if response.status_code >= 400:
                raise error_from_response(self.provider, response, redact=self._redact)
            result = parse(response)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            status, request_id = ((None, None) if response is None
                                  else (response.status_code, request_id_of(response.headers)))
            self._account(operation, start, response, result, error, request_id)
            http_end(traced, status, request_id, error)

    def _malformed(self, response: httpx.Response, problem: str, *,
                   code: str | None = None) -> MalformedResponseError:
        return MalformedResponseError(problem, provider=self.provider, code=code,
                                      status_code=response.status_code,
                                      request_id=request_id_of(response.headers))

    def _parse_model(self, response: httpx.Response, model: type[M]) -> M:
        """The body validated into ``model``, or :class:`MalformedResponseError` saying where."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise self._malformed(response, f"answer does not match {model.__name__}: "
                                            f"{summarize(exc)}", code="schema_mismatch") from exc

    def _describe_transport_error(self, exc: Exception, request: Outgoing) -> str:
        # The host, not the URL; the transport's own message may quote the URL, hence _redact.
        text = f"{type(exc).__name__} talking to {request.url.host}: {exc}".rstrip(": ")
        return self._redact(text)

    def _account(self, operation: str, start: float, response: httpx.Response | None,
                 result: object, error: BaseException | None, request_id: str | None) -> None:
        usage = self.usage
        spent = self._spend(operation, response, result) if response is not None else {}
        usage.spent.update(spent)
        cached = response is not None and response.status_code == 304
        if response is not None:
            usage.calls += 1
            usage.cached += cached
        if error is not None and not isinstance(error, asyncio.CancelledError):
            usage.failures += 1
        recorder = self.recorder
        if recorder is None:
            return
        recorder.add(
            "http", f"{self.provider}.{operation}", start=start, seconds=recorder.now() - start,
            ok=error is None, error=None if error is None else type(error).__name__,
            provider=self.provider,
            status=None if response is None else response.status_code,
            bytes=0 if response is None else len(response.content),
            cost=spent.get(self.cost_unit), cost_unit=self.cost_unit, cached=cached,
            request_id=getattr(error, "request_id", None) or request_id,
            **{name: value for name, value in spent.items() if name != self.cost_unit})
