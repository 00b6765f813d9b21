"""How the clients put a request on the wire: aiohttp directly by default, any httpx transport
on request. Chosen by measurement: ``opusclip bench api --stacks
client,client/httpx-aiohttp,client/httpx,aiohttp`` prints each stack's rate and CPU time per
request.

What limits throughput at concurrency 100 is CPU, and httpx's request/response object model
is what costs it, not the socket: ``httpx.AsyncClient`` adds its cookie, redirect and auth
machinery to every request, and its default transport's pool (httpcore) costs far more again.

One event loop cannot beat one request per CPU cost, so the default sender calls aiohttp itself
and hands back an ``httpx.Response``: errors, parsing, tests and metrics only see httpx types.

===================  ======================================================================
``transport=``       what sends the request
===================  ======================================================================
``"aiohttp"``        :class:`AiohttpSender`: one ``aiohttp.ClientSession`` per client (default)
``"httpx-aiohttp"``  ``httpx_aiohttp.AiohttpTransport`` (what the OpenAI SDK offers)
``"httpx"``          ``httpx.AsyncHTTPTransport`` (httpcore)
a transport          any ``httpx.AsyncBaseTransport``: ``MockTransport``, ``ASGITransport(app)``
===================  ======================================================================

``OPUSCLIP_HTTP_TRANSPORT`` changes the default. vcrpy records every request exactly once either
way: its aiohttp patcher (``ClientSession._request``) sees the aiohttp senders, its httpx patcher
sees httpx's own transports; a cassette recorded through one replays through the others
(``tests/test_api_transport.py``). Each sender opens its pool inside the client's ``async with``
and closes it there, aiohttp's session included.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, cast, get_args

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport

TransportName = Literal["aiohttp", "httpx-aiohttp", "httpx"]
TRANSPORT_VARIABLE = "OPUSCLIP_HTTP_TRANSPORT"
DEFAULT_TRANSPORT: TransportName = "aiohttp"


class Outgoing(NamedTuple):
    """A request as the clients build it: already encoded, ready for any sender (the URL as
    ``yarl.URL(..., encoded=True)``: aiohttp sends it as it is, httpx parses its string)."""

    method: str
    url: yarl.URL
    headers: Mapping[str, str]
    content: bytes | None = None

    def __repr__(self) -> str:  # the query and the headers may hold the API key
        return f"Outgoing({self.method} {self.url.scheme}://{self.url.host}{self.url.path})"


@dataclass(frozen=True, slots=True)
class StreamedResponse:
    """A response whose body is still arriving: ``await receive()`` gives the next piece as it
    came off the wire, ``b""`` at the end; httpx's exceptions for transport failures."""

    status_code: int
    headers: httpx.Headers
    receive: Callable[[], Awaitable[bytes]]

    async def read(self) -> httpx.Response:
        """The rest of the body as a read ``httpx.Response`` (for error bodies)."""
        parts = []
        while chunk := await self.receive():
            parts.append(chunk)
        return httpx.Response(self.status_code, headers=self.headers, content=b"".join(parts))


class Sender(Protocol):
    def bounds(self, request: Outgoing) -> bool:
        """Whether this sender's own timeouts bound every phase of sending ``request``, so the
        client needs no deadline of its own around it."""
        ...

    async def send(self, request: Outgoing) -> httpx.Response:
        """The whole response, body read; httpx's exceptions for transport failures."""
        ...

    def stream(self, request: Outgoing) -> AbstractAsyncContextManager[StreamedResponse]:
        """The response as soon as its headers arrive; leaving the block closes the connection
        unless the body was read to its end (then it goes back to the pool)."""
        ...

    async def aclose(self) -> None: ...


def default_transport_name() -> TransportName:
    """``OPUSCLIP_HTTP_TRANSPORT`` if set, else the measured winner (aiohttp)."""
    return check_transport_name(os.environ.get(TRANSPORT_VARIABLE) or DEFAULT_TRANSPORT)


def check_transport_name(name: str) -> TransportName:
    if name not in get_args(TransportName):
        raise ValueError(f"unknown HTTP transport {name!r}; expected one of "
                         f"{', '.join(get_args(TransportName))} (set {TRANSPORT_VARIABLE})")
    return cast(TransportName, name)  # checked just above


def make_sender(choice: httpx.AsyncBaseTransport | TransportName | None, *,
                limits: httpx.Limits, timeout: httpx.Timeout) -> Sender:
    """A new sender with its own pool; call inside the event loop that will use it."""
    if isinstance(choice, httpx.AsyncBaseTransport):
        return HttpxSender(choice, timeout)
    name = check_transport_name(choice) if choice else default_transport_name()
    if name == "aiohttp":
        return AiohttpSender(limits, timeout)
    transport = (AiohttpTransport(limits=limits) if name == "httpx-aiohttp"
                 else httpx.AsyncHTTPTransport(limits=limits))
    return HttpxSender(transport, timeout)


class HttpxSender:
    """Any httpx transport, driven directly: ``AsyncClient``'s cookie jar, redirect and auth
    flows are machinery these clients do not use, paid on every request."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        self.transport = transport
        self._extensions = {"timeout": timeout.as_dict()}

    def bounds(self, request: Outgoing) -> bool:
        """Never assumed: in-process transports (``ASGITransport``, ``MockTransport``) enforce
        no timeout at all."""
        return False

    def _httpx_request(self, request: Outgoing) -> httpx.Request:
        return httpx.Request(request.method, str(request.url), headers=request.headers,
                             content=request.content, extensions=self._extensions)

    async def send(self, request: Outgoing) -> httpx.Response:
        response = await self.transport.handle_async_request(self._httpx_request(request))
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    @asynccontextmanager
    async def stream(self, request: Outgoing) -> AsyncIterator[StreamedResponse]:
        response = await self.transport.handle_async_request(self._httpx_request(request))
        # The raw stream (a transport's response is not read); an async transport's is async.
        pieces = aiter(cast(httpx.AsyncByteStream, response.stream))
        try:
            yield StreamedResponse(response.status_code, response.headers,
                                   lambda: anext(pieces, b""))
        finally:
            if isinstance(pieces, AsyncGenerator):
                await pieces.aclose()
            await response.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()


#: aiohttp's failures as httpx's, most specific first, so the clients catch one family.
AIOHTTP_ERRORS: tuple[tuple[type[BaseException], Callable[[str], httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # includes waiting for the pool
    (TimeoutError, httpx.ReadTimeout),  # SocketTimeoutError, ServerTimeoutError
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
)


def as_httpx_error(exc: aiohttp.ClientError | TimeoutError) -> httpx.TransportError:
    mapped = next(httpx_kind for kind, httpx_kind in AIOHTTP_ERRORS if isinstance(exc, kind))
    return mapped(f"{type(exc).__name__}: {exc}")


class AiohttpSender:
    """One ``aiohttp.ClientSession`` per client, the response wrapped as an ``httpx.Response``.

    Timeouts map onto aiohttp's: ``connect`` -> ``sock_connect``, ``read`` -> ``sock_read``,
    ``pool + connect`` -> ``connect`` (aiohttp counts the wait for a pooled connection in it);
    aiohttp has no write timeout. ``max_connections`` is the pool size (aiohttp keeps every
    idle connection alive up to it, for ``keepalive_expiry`` seconds). Bodies are left
    compressed, as on the wire, and decoded by httpx, so a recording holds what the server sent.
    No ``trust_env``: it re-reads proxy variables and ``~/.netrc`` on every request, so
    ``HTTPS_PROXY`` needs ``transport="httpx"``.
    """

    def __init__(self, limits: httpx.Limits, timeout: httpx.Timeout) -> None:
        connector = aiohttp.TCPConnector(  # httpx's None ("no limit"): 0 (none), aiohttp's 15 s
            limit=limits.max_connections or 0, keepalive_timeout=limits.keepalive_expiry or 15.0)
        wait = timeout.pool + timeout.connect if timeout.pool and timeout.connect else None
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, connect=wait, sock_connect=timeout.connect,
                                          sock_read=timeout.read))
        self._bounded = None not in (wait, timeout.connect, timeout.read)

    def bounds(self, request: Outgoing) -> bool:
        """A request without a body: the pool wait and the connection are under ``connect``, its
        head goes to the socket's buffer without waiting, and the wait for the answer and its
        body are under ``sock_read``. A body may wait on a stalled peer, which no aiohttp timeout
        covers (it has no write timeout). The client's own deadline costs a timer per call."""
        return self._bounded and request.content is None

    async def send(self, request: Outgoing) -> httpx.Response:
        try:
            async with self.session.request(
                    request.method, request.url, headers=request.headers,
                    data=request.content, allow_redirects=False) as answer:
                body = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise as_httpx_error(exc) from exc
        # As a transport hands a response to httpx: the body as its stream, which read() runs
        # through the decoders (gzip, deflate). ``content=`` would also encode it as a request
        # body and fill in content headers, paid on every call for nothing the clients use.
        response = httpx.Response(answer.status, headers=answer.raw_headers,
                                  stream=httpx.ByteStream(body))
        response.read()
        return response

    @asynccontextmanager
    async def stream(self, request: Outgoing) -> AsyncIterator[StreamedResponse]:
        try:
            answer = await self.session.request(
                request.method, request.url, headers=request.headers, data=request.content,
                allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise as_httpx_error(exc) from exc

        async def receive() -> bytes:
            try:
                return await answer.content.readany()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise as_httpx_error(exc) from exc

        try:
            yield StreamedResponse(answer.status, httpx.Headers(answer.raw_headers), receive)
        finally:
            if answer.content.at_eof():
                answer.release()  # read whole: the connection goes back to the pool
            else:
                answer.close()  # an unread body cannot be skipped: the connection is dropped

    async def aclose(self) -> None:
        await self.session.close()
