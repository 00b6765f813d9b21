"""OpenTelemetry tracing: one trace per job, a span per stage, database query, API call and
ffmpeg run, named with the standard semantic-convention attributes.

Off until :func:`configure_tracing` is called: the hooks in :mod:`.instrument` then return at
once. Notebooks pass an ``InMemorySpanExporter`` and draw the spans; a worker started with the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` exports them over OTLP/HTTP in a background thread. An
endpoint that does not answer gets one warning, and the pipeline goes on (spans are dropped).

The provider is this module's, not OpenTelemetry's global one (which may be set only once per
process), so a notebook can reconfigure it; the *context* is OpenTelemetry's, held in context
variables, so a span started in a task is the parent of the spans of the tasks it creates.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger(__name__)

SERVICE_NAME = "opusclip"
OTLP_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CONNECT_CHECK_S = 0.5


class _State:
    provider: TracerProvider | None = None
    tracer: trace.Tracer | None = None


state = _State()


def tracer() -> trace.Tracer | None:
    """The tracer, or ``None`` while tracing is off."""
    return state.tracer


def otlp_endpoint() -> str | None:
    for name in OTLP_VARIABLES:
        if value := os.environ.get(name, "").strip():
            return value
    return None


def endpoint_reachable(url: str, timeout_s: float = CONNECT_CHECK_S) -> bool:
    """Whether something accepts a TCP connection at ``url``'s host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 4318)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def configure_tracing(exporter: SpanExporter | None = None, *, batch: bool = False,
                      service_name: str = SERVICE_NAME,
                      sampler: Sampler | None = None) -> TracerProvider | None:
    """Switch tracing on: spans go to ``exporter`` (as each ends, or in background batches
    with ``batch``), else over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; with neither
    it stays off.

    ``sampler`` decides which traces are recorded; without one, OpenTelemetry's standard
    ``OTEL_TRACES_SAMPLER`` variables do (every trace when unset). A busy worker samples whole
    jobs, ``ParentBased(TraceIdRatioBased(0.1))``: a recorded span costs tens of microseconds,
    an unsampled one almost nothing. Replaces (and shuts down) whatever an earlier call
    configured.
    """
    shutdown_tracing()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                              sampler=sampler)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch
                                    else SimpleSpanProcessor(exporter))
    elif (endpoint := otlp_endpoint()) is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if not endpoint_reachable(endpoint):
            logger.warning("OTLP endpoint %s does not answer: its spans will be dropped, the "
                           "work goes on", endpoint)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=2)))
    else:
        return None
    state.provider = provider
    state.tracer = provider.get_tracer("opusclip_lib")
    return provider


def shutdown_tracing() -> None:
    """Flush and stop the current provider; tracing is off afterwards."""
    provider, state.provider, state.tracer = state.provider, None, None
    if provider is not None:
        provider.shutdown()


def carrier() -> dict[str, str]:
    """The current span as W3C ``traceparent`` (empty when none): what a job payload carries
    so the worker that claims it continues the trace, in this process or another."""
    if state.tracer is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return {name: value for name, value in headers.items() if name == "traceparent"}


def parent_from(payload: Any) -> Any:
    """The context a job's payload names as its parent (``None``: a new trace)."""
    if isinstance(payload, Mapping) and isinstance(payload.get("traceparent"), str):
        return propagate.extract({"traceparent": payload["traceparent"]})
    return None


def span_rows(spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    """Finished spans as rows (ids in hex, times in seconds from the first start): for a
    DataFrame, a waterfall chart or a test that checks the tree."""
    if not spans:
        return []
    origin = min(span.start_time or 0 for span in spans)
    rows = []
    for span in spans:
        context = span.get_span_context()
        assert context is not None
        rows.append({
            "name": span.name, "span_id": f"{context.span_id:016x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
            "trace_id": f"{context.trace_id:032x}",
            "start_s": ((span.start_time or 0) - origin) / 1e9,
            "seconds": ((span.end_time or 0) - (span.start_time or 0)) / 1e9,
            "status": span.status.status_code.name,
            "exception": next((event.attributes.get("exception.type") for event in span.events
                               if event.name == "exception" and event.attributes), None),
            **dict(span.attributes or {}),
        })
    return rows
