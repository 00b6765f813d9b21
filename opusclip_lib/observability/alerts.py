"""Alert rules evaluated in-process, the same three that ``alerts.yml`` gives Prometheus.

* **error rate**: failures over attempts started in the last ``window_s`` seconds;
* **breaker open**: a provider's circuit breaker refuses calls;
* **queue age**: the oldest due job has waited longer than ``queue_age_s``.

:func:`evaluate` reads the database and the clients' breakers; :func:`publish` turns each alert
into a log line (``event="alert"``) and a note in the ``job_events`` of the job it points at.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opusclip_lib.db import Executor
from opusclip_lib.db import failures as failure_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertRules:
    error_rate: float = 0.5
    min_failures: int = 3
    window_s: float = 300.0
    queue_age_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    summary: str
    value: float
    job_id: int | None = None


def breaker_states(clients: Mapping[str, Any]) -> dict[str, str]:
    """``{provider: "closed" | "open" | "half_open"}`` for clients whose policy has a breaker."""
    states = {}
    for provider, client in clients.items():
        breaker = getattr(getattr(client, "resilience", None), "breaker", None)
        if breaker is not None:
            states[provider] = str(breaker.state.value)
    return states


async def evaluate(ex: Executor, rules: AlertRules = AlertRules(), *,
                   breakers: Mapping[str, str] | None = None) -> list[Alert]:
    """The alerts firing now."""
    alerts: list[Alert] = []
    groups = await failure_rows.failure_groups(ex, within_s=rules.window_s, limit=1)
    example = groups[0].example_job_id if groups else None
    failed, started = await failure_rows.failure_rate(ex, rules.window_s)
    rate = failed / started if started else float(failed > 0)
    if failed >= rules.min_failures and rate >= rules.error_rate:
        alerts.append(Alert("error_rate", f"{failed} failures for {started} attempts in the last "
                            f"{rules.window_s:g} s (rate {rate:.2f})", rate, example))
    for provider, state in sorted((breakers or {}).items()):
        if state == "open":
            alerts.append(Alert("breaker_open", f"{provider} circuit breaker is open", 1.0,
                                example))
    oldest = await failure_rows.oldest_pending(ex)
    if oldest is not None and oldest[1] >= rules.queue_age_s:
        alerts.append(Alert("queue_age", f"job {oldest[0]} has waited {oldest[1]:.0f} s to be "
                            "claimed", oldest[1], oldest[0]))
    return alerts


async def publish(ex: Executor, alerts: list[Alert]) -> None:
    """Each alert as a warning line and, when it names a job, a note in that job's events."""
    for alert in alerts:
        logger.warning("alert %s: %s", alert.name, alert.summary,
                       extra={"event_kind": "alert", "alert": alert.name,
                              "alert_job_id": alert.job_id})
        if alert.job_id is not None:
            await failure_rows.note_on_job(ex, alert.job_id, f"alert {alert.name}: "
                                                              f"{alert.summary}")
