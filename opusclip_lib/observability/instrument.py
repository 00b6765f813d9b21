"""The hooks the core calls at its few exchange points; cheap when observability is off.

While tracing is off (and logging below INFO) the API, query and ffmpeg hooks return after a
flag test; the job and stage scopes still set their log fields, one context-variable set each.

* :func:`http_start` / :func:`http_end` around ``APIClient._exchange`` (every API call);
* :func:`query_start` / :func:`query_end` around ``Connection._call`` (every SQL statement);
* :func:`traced_ffmpeg` on ``run_ffmpeg``; :func:`traced_job` (a :class:`JobScope`) on
  ``Engine.process``; :func:`stage_scope` around each stage of the engine's loop.

Query and API spans are made only under a span already recording (a job's, a notebook's): a
worker polling its queue between jobs makes no traces of its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import Token
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from opusclip_lib.observability import context
from opusclip_lib.observability.tracing import parent_from, state

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

QUERY_TEXT_MAX = 300
DB_SYSTEMS = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}


class _Call:
    """A started span (if tracing) and the log context it bound (undone by ``http_end``)."""

    __slots__ = ("provider", "span", "token")

    def __init__(self, provider: str, span: Span | None, token: Token[str | None]) -> None:
        self.provider = provider
        self.span = span
        self.token = token


def _child_span(name: str, kind: SpanKind, attributes: dict[str, Any]) -> Span | None:
    tracer = state.tracer
    if tracer is None or not trace.get_current_span().is_recording():
        return None
    return tracer.start_span(name, kind=kind, attributes=attributes)


def _end(span: Span, error: BaseException | None) -> None:
    if error is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()


# --- API calls --------------------------------------------------------------------------------

def http_start(provider: str, operation: str, method: str, url: Any) -> _Call | None:
    """A client span for one exchange (when tracing); ``url.full`` keeps scheme, host and path
    (no query: it may hold the key). When tracing or logging at INFO, the log context gets
    ``provider`` until :func:`http_end`, which logs a failed call with its ``request_id``."""
    span = None
    tracer = state.tracer
    if tracer is not None and trace.get_current_span().is_recording():
        name, attributes = _client_span(provider, operation, method, url.scheme, url.host,
                                        url.port, url.path)
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    elif not logger.isEnabledFor(logging.INFO):
        return None
    return _Call(provider, span, context.enter_call(provider))


@functools.lru_cache(maxsize=1024)
def _client_span(provider: str, operation: str, method: str, scheme: str, host: str,
                 port: int | None, path: str) -> tuple[str, Mapping[str, Any]]:
    """The name and starting attributes of a client span, built once per endpoint: a client
    calls the same few paths over and over."""
    return f"{method} {provider}.{operation}", MappingProxyType({
        "http.request.method": method, "server.address": host,
        "server.port": port or (443 if scheme == "https" else 80),
        "url.full": f"{scheme}://{host}{path}"})


def http_end(call: _Call | None, status_code: int | None, request_id: str | None,
             error: BaseException | None) -> None:
    if call is None:
        return
    if error is not None and not isinstance(error, asyncio.CancelledError):
        logger.info("%s call failed: %s", call.provider, status_code or type(error).__name__,
                       extra={"request_id": request_id, "http_status": status_code})
    span = call.span
    if span is not None:
        if status_code is not None:  # what is known only at the end, set at once (one lock)
            span.set_attributes({"http.response.status_code": status_code,
                                 "opusclip.request_id": request_id} if request_id
                                else {"http.response.status_code": status_code})
        if error is None and status_code is not None and status_code >= 400:
            span.set_status(Status(StatusCode.ERROR, str(status_code)))
        _end(span, error)
    context.leave_call(call.token)


# --- database statements ---------------------------------------------------------------------

def query_start(backend: str, name: str, sql: str = "") -> Span | None:
    """A span for one statement: ``db.query.summary`` is the repository's name for it (``claim
    jobs``), ``db.query.text`` the statement with its ``?`` placeholders, whitespace folded and
    cut to :data:`QUERY_TEXT_MAX` characters. Parameters never land in a trace."""
    tracer = state.tracer
    if tracer is None or not trace.get_current_span().is_recording():
        return None
    return tracer.start_span(name, kind=SpanKind.CLIENT,
                             attributes=_query_attributes(backend, name, sql))


@functools.lru_cache(maxsize=1024)
def _query_attributes(backend: str, name: str, sql: str) -> Mapping[str, Any]:
    """A statement's span attributes, built once per statement: the same ones repeat."""
    text = " ".join(sql.split()) if sql else name
    return MappingProxyType({
        "db.system.name": DB_SYSTEMS.get(backend, backend),
        "db.operation.name": text.split(" ", 1)[0].upper(), "db.query.summary": name,
        "db.query.text": text[:QUERY_TEXT_MAX]})


def query_end(span: Span | None, error: BaseException | None) -> None:
    if span is not None:
        _end(span, error)


# --- ffmpeg, jobs, stages -------------------------------------------------------------------

def traced_ffmpeg(run: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wrap ``run_ffmpeg(args, *, output=...)`` in a span naming the output file."""

    @functools.wraps(run)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        if state.tracer is None:
            return await run(*args, **kwargs)
        arguments = args[0] if args else ()
        output = kwargs.get("output")
        span = _child_span("ffmpeg", SpanKind.INTERNAL, {
            "process.executable.name": "ffmpeg",
            "process.command_args": [os.fspath(a) for a in arguments]
            if isinstance(arguments, Sequence) else [],
            "opusclip.output": os.fspath(output) if isinstance(output, str | os.PathLike) else ""})
        if span is None:
            return await run(*args, **kwargs)
        with trace.use_span(span, end_on_exit=True, record_exception=True,
                            set_status_on_exception=True):
            return await run(*args, **kwargs)

    return wrapper


class JobScope:
    """The block of one job: its log context and, when tracing, its span made current (whose
    parent is the payload's ``traceparent``, if the job was enqueued inside a trace).

    A class, not a generator or ``start_as_current_span``: those stack three context managers,
    and a worker enters this once per job. An exception leaving the block ends the span with it.
    """

    __slots__ = ("_attached", "_fields", "job", "span")

    def __init__(self, job: Any) -> None:
        self.job = job
        self.span: Span | None = None

    def __enter__(self) -> Span | None:
        job = self.job
        self._fields = context.push(**context.job_fields(job))
        tracer = state.tracer
        if tracer is not None:
            self.span = tracer.start_span(
                f"job {job.id}", context=parent_from(job.payload), kind=SpanKind.CONSUMER,
                attributes={"opusclip.job.id": job.id, "opusclip.video.id": job.video_id or 0,
                            "opusclip.job.attempt": job.attempts})
            self._attached = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.span is not None:
            otel_context.detach(self._attached)
            # as use_span: a cancellation or exit is not the job's error
            _end(self.span, error if isinstance(error, Exception) else None)
        context.pop(self._fields)


def traced_job(process: Callable[[Any, Any], Coroutine[Any, Any, T]]
               ) -> Callable[[Any, Any], Coroutine[Any, Any, T]]:
    """Wrap ``Engine.process(job)`` in its :class:`JobScope`, with a line when it ends."""

    @functools.wraps(process)
    async def wrapper(engine: Any, job: Any) -> T:
        with JobScope(job) as span:
            result = await process(engine, job)
            status = getattr(result, "status", None)
            # The row keeps its last error after a retry succeeds; the line and the span name
            # it only when the job did not complete.
            error_code = None if status == "completed" else getattr(result, "error_code", None)
            if span is not None:
                span.set_attribute("opusclip.job.status", str(status))
                if status != "completed":
                    span.set_status(Status(StatusCode.ERROR, str(error_code or status)))
            logger.info("job %s", status, extra={"error_code": error_code})
            return result

    return wrapper


@contextmanager
def stage_scope(name: str) -> Iterator[None]:
    """The block of one stage: ``stage`` in the log context, a line when it ends (with its
    seconds) and, when tracing, its span (which records the exception if the stage fails)."""
    tracer = state.tracer
    started = time.perf_counter()
    with context.bound(stage=name):
        try:
            if tracer is None:
                yield
            else:
                with tracer.start_as_current_span(f"stage {name}",
                                                  attributes={"opusclip.stage": name}):
                    yield
        except BaseException as error:
            logger.info("stage failed", extra={"seconds": round(time.perf_counter() - started, 4),
                                               "error_type": type(error).__name__})
            raise
        logger.info("stage done", extra={"seconds": round(time.perf_counter() - started, 4)})
