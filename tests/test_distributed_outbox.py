"""The outbox and worker liveness on all three database backends; a broker that is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from opusclip_lib.db import Database, connect, jobs, outbox, workers
from opusclip_lib.distributed.brokers import BrokerSettings, broker_kind, redact
from opusclip_lib.distributed.command import enqueue, status
from opusclip_lib.distributed.errors import BrokerUnavailableError
from opusclip_lib.errors import ConfigurationError, TransientError


class Boom(Exception):
    pass


async def test_job_and_wakeup_commit_together_or_not_at_all(db: Database) -> None:
    job = await outbox.enqueue(db, "k", payload={"traceparent": "00-abc-def-01"},
                               idempotency_key="k:1")
    with pytest.raises(Boom):
        async with db.transaction() as tx:
            await outbox.enqueue(tx, "k", idempotency_key="k:2")
            raise Boom
    assert [j.id for j in await jobs.list_jobs(db)] == [job.id]
    assert await outbox.unsent_count(db) == 1
    async with db.transaction() as tx:
        [wakeup] = await outbox.take_unsent(tx, limit=10)
        assert (wakeup.job_id, wakeup.traceparent) == (job.id, "00-abc-def-01")
        await outbox.mark_sent(tx, [wakeup.id])
    assert await outbox.unsent_count(db) == 0


async def test_a_known_job_is_announced_again_only_while_pending(db: Database) -> None:
    first = await outbox.enqueue(db, "k", idempotency_key="k:1")
    again = await outbox.enqueue(db, "k", idempotency_key="k:1")
    assert again.id == first.id
    assert await outbox.unsent_count(db) == 2
    [claimed] = await jobs.claim(db, "w1")
    await outbox.enqueue(db, "k", idempotency_key="k:1")
    assert claimed.id == first.id
    assert await outbox.unsent_count(db) == 2


async def test_status_counts_queue_age_and_live_workers(db: Database) -> None:
    await outbox.enqueue(db, "k", idempotency_key="k:1")
    await outbox.enqueue(db, "k", idempotency_key="k:2")
    await jobs.claim(db, "w1")
    await workers.seen(db, "w1", broker="redis")
    await workers.seen(db, "w1", broker="redis")  # a refresh, not a second worker
    await workers.seen(db, "w2")
    report = await status(db, alive_within_s=60)
    assert report["pending"] == 1
    assert report["running"] == 1
    assert report["workers_alive"] == 2
    assert report["outbox_unsent"] == 2
    assert report["oldest_pending_age_s"] is not None
    assert report["oldest_pending_age_s"] >= 0
    await workers.gone(db, "w2")
    assert (await workers.summary(db, alive_within_s=60)).workers_alive == 1


@pytest.mark.parametrize("url", ["redis://:secret@127.0.0.1:{port}/4",
                                 "amqp://guest:secret@127.0.0.1:{port}/",
                                 "nats://user:secret@127.0.0.1:{port}"])
async def test_a_broker_that_is_down_leaves_the_jobs_in_the_outbox(
        tmp_path: Path, closed_port: int, url: str) -> None:
    settings = BrokerSettings(url.format(port=closed_port), prefix="h_broker_down")
    async with connect(f"sqlite:///{tmp_path}/down.db") as db:
        report = await enqueue(db, ["dQw4w9WgXcQ", "opusSample1"], settings)
        assert len(report["jobs"]) == 2
        assert report["outbox_unsent"] == 2
        assert "relayed" not in report
        error = report["broker_error"]
        assert f"{broker_kind(settings.url)} broker at " in error
        assert f"127.0.0.1:{closed_port}" in error
        assert "secret" not in error
        assert {j.status for j in await jobs.list_jobs(db)} == {"pending"}


def test_broker_errors_are_transient_and_carry_no_credentials() -> None:
    assert issubclass(BrokerUnavailableError, TransientError)
    assert redact("amqp://guest:pw@host:5672/vhost") == "amqp://host:5672/vhost"
    assert redact("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    with pytest.raises(ConfigurationError, match="scheme"):
        broker_kind("kafka://user:pw@host")
