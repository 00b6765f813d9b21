"""Observability: structured logs with the job's context, OpenTelemetry traces, Prometheus
metrics, loop-lag monitoring and profiling, and error tracking with in-process alerts.

Everything is off until switched on (:func:`configure_logging`, :func:`configure_tracing`, a
:class:`MetricsRecorder`), and the hooks the core calls cost a flag test while off. Error
tracking and alerts read the database: import them from :mod:`.errors_tracking` and
:mod:`.alerts` (this package itself imports no database code, since the database imports it).
"""

from opusclip_lib.observability.context import FIELDS, bound, current, job_fields
from opusclip_lib.observability.logging import configure_logging, redact_text, truncate
from opusclip_lib.observability.loop_lag import LagMonitor, monitor_loop_lag, slow_callbacks
from opusclip_lib.observability.metrics_export import Metrics, MetricsRecorder, metrics_server
from opusclip_lib.observability.tracing import (
    carrier,
    configure_tracing,
    shutdown_tracing,
    span_rows,
)

__all__ = [
    "FIELDS",
    "LagMonitor",
    "Metrics",
    "MetricsRecorder",
    "bound",
    "carrier",
    "configure_logging",
    "configure_tracing",
    "current",
    "job_fields",
    "metrics_server",
    "monitor_loop_lag",
    "redact_text",
    "shutdown_tracing",
    "slow_callbacks",
    "span_rows",
    "truncate",
]
