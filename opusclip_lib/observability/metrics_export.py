"""Prometheus metrics from the events every layer already records, served on ``/metrics``.

The project's layers report what they did to a :class:`~opusclip_lib.metrics.Recorder`
(queries, API calls, cache look-ups, breaker changes, stages). :class:`MetricsRecorder` is a
recorder that turns those events into Prometheus counters and histograms as they arrive, so no
layer knows Prometheus exists. What no event says (queue depth, oldest job age) is sampled from
the database by :func:`sample_queue`; the event-loop lag comes from :mod:`.loop_lag`.

Each :class:`Metrics` has its own registry (not ``prometheus_client``'s global one), so a test or
a notebook can make a fresh set and scrape exactly what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from opusclip_lib.metrics import Recorder

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=MetricWrapperBase)

#: Seconds: from a cache hit or a SQLite read (sub-millisecond) to a long render.
BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
             30.0, 60.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    """The project's metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram("opusclip_stage_seconds", "Seconds one workflow stage took",
                                       ["stage", "outcome"], buckets=BUCKETS_S, registry=r)
        self.api_seconds = Histogram("opusclip_api_request_seconds",
                                     "Seconds one API exchange took, by provider and status",
                                     ["provider", "status"], buckets=BUCKETS_S, registry=r)
        self.query_seconds = Histogram("opusclip_db_query_seconds",
                                       "Seconds one SQL statement took",
                                       ["backend", "query", "outcome"], buckets=BUCKETS_S,
                                       registry=r)
        self.cache_lookups = Counter("opusclip_cache_lookups", "Response-cache look-ups",
                                     ["provider", "result"], registry=r)
        self.breaker_state = Gauge("opusclip_breaker_state",
                                   "Circuit breaker state: 0 closed, 1 half open, 2 open",
                                   ["provider"], registry=r)
        self.queue_depth = Gauge("opusclip_queue_depth", "Jobs per status", ["status"],
                                 registry=r)
        self.oldest_job_age = Gauge("opusclip_oldest_pending_job_age_seconds",
                                    "Age of the oldest job waiting to be claimed", registry=r)
        self.loop_lag = Histogram("opusclip_event_loop_lag_seconds",
                                  "How late the event loop woke a sleeping timer",
                                  buckets=BUCKETS_S, registry=r)
        self.alerts = Counter("opusclip_alerts", "Alerts raised in-process", ["alert"],
                              registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}  # (metric, *label values): child

    def observe(self, kind: str, name: str, seconds: float, ok: bool,
                labels: dict[str, Any]) -> None:
        """One recorder event into the matching metric; kinds without a metric are ignored."""
        if kind == "http":
            status = labels.get("status")
            self._child(self.api_seconds, labels.get("provider") or name.split(".", 1)[0],
                        "error" if status is None else str(status)).observe(seconds)
        elif kind == "query":
            self._child(self.query_seconds, labels.get("backend", ""), name,
                        "ok" if ok else "error").observe(seconds)
        elif kind == "stage":
            self._child(self.stage_seconds, name, "ok" if ok else "error").observe(seconds)
        elif kind == "cache":
            self._child(self.cache_lookups, name, "hit" if labels.get("hit") else "miss").inc()
        elif kind == "breaker":
            self._child(self.breaker_state, name).set(
                BREAKER_STATES.get(str(labels.get("state")), 0))

    def _child(self, metric: M, *values: str) -> M:
        """``metric.labels(*values)``, looked up once per metric and values: ``labels()``
        validates and locks on every call, and an event arrives with every API call and query."""
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child


class MetricsRecorder(Recorder):
    """A recorder that feeds :class:`Metrics`; ``keep=False`` (a long-running worker) keeps no
    events, ``keep=True`` keeps them for DataFrames as well."""

    def __init__(self, metrics: Metrics, *, keep: bool = False) -> None:
        super().__init__()
        self.metrics = metrics
        self.keep = keep

    def add(self, kind: str, name: str, *, start: float | None = None, seconds: float = 0.0,
            ok: bool = True, error: str | None = None, **labels: Any) -> None:
        """Observe the event, and keep it if asked."""
        self.metrics.observe(kind, name, seconds, ok, labels)
        if self.keep:
            super().add(kind, name, start=start, seconds=seconds, ok=ok, error=error, **labels)


@contextmanager
def metrics_server(metrics: Metrics, port: int | None, *,
                   address: str = "127.0.0.1") -> Iterator[int | None]:
    """Serve ``/metrics`` on ``port`` (0: any free port) while the block runs; yields the port.

    A port already taken gets a warning and no server (yields ``None``): the work goes on.
    """
    if port is None:
        yield None
        return
    try:
        server, thread = start_http_server(port, addr=address, registry=metrics.registry)
    except OSError as exc:
        logger.warning("metrics port %s unavailable (%s): no /metrics, the work goes on",
                       port, exc.strerror or exc)
        yield None
        return
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
