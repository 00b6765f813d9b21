"""What a worker measures on a timer, beside the events: the queue, the breakers, the loop, and
the in-process alert rules.

``async with observe_worker(db, clients, metrics, port):`` serves ``/metrics`` (a taken port: a
warning, no server), monitors the loop's lag, and every ``interval_s`` samples the queue depth,
the oldest due job's age and each breaker's state, then evaluates and publishes the alerts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from opusclip_lib.db import DatabaseError, Executor, every, jobs
from opusclip_lib.db import failures as failure_rows
from opusclip_lib.observability.alerts import AlertRules, breaker_states, evaluate, publish
from opusclip_lib.observability.loop_lag import monitor_loop_lag
from opusclip_lib.observability.metrics_export import BREAKER_STATES, Metrics, metrics_server
from opusclip_lib.pipelines import background

logger = logging.getLogger(__name__)

SAMPLE_EVERY_S = 5.0


async def sample_once(db: Executor, clients: Mapping[str, Any], metrics: Metrics,
                      rules: AlertRules | None = None) -> None:
    """One round: gauges from the database and the breakers, then the alert rules."""
    for status, count in (await jobs.queue_counts(db)).items():
        metrics.queue_depth.labels(status).set(count)
    oldest = await failure_rows.oldest_pending(db)
    metrics.oldest_job_age.set(0.0 if oldest is None else oldest[1])
    breakers = breaker_states(clients)
    for provider, state in breakers.items():
        metrics.breaker_state.labels(provider).set(BREAKER_STATES.get(state, 0))
    alerts = await evaluate(db, rules or AlertRules(), breakers=breakers)
    for alert in alerts:
        metrics.alerts.labels(alert.name).inc()
    await publish(db, alerts)


async def _sample_forever(db: Executor, clients: Mapping[str, Any], metrics: Metrics,
                          interval_s: float) -> None:
    await every(interval_s, lambda: sample_once(db, clients, metrics), skip=DatabaseError,
                skipped="metrics sample skipped")


@asynccontextmanager
async def observe_worker(db: Executor, clients: Mapping[str, Any], metrics: Metrics | None,
                         port: int | None, *, interval_s: float = SAMPLE_EVERY_S,
                         ) -> AsyncIterator[int | None]:
    """Serve and sample while the block runs; yields the metrics port (``None``: not served).
    With ``metrics=None`` it does nothing at all."""
    if metrics is None:
        yield None
        return
    with metrics_server(metrics, port) as served:
        async with (monitor_loop_lag(observe=metrics.loop_lag.observe),
                    background(_sample_forever(db, clients, metrics, interval_s),
                               name="metrics sampler")):
            yield served
