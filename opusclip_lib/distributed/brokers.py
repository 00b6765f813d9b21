"""A taskiq broker picked by URL, used as a doorbell: each message only names a job to claim.

``redis://`` is Redis Streams (taskiq-redis), ``amqp://`` RabbitMQ (taskiq-aio-pika),
``nats://`` NATS JetStream (taskiq-nats, a pull consumer). Queue, stream and consumer names
start with ``prefix``, so several deployments (or tests) share one server.

``ack_deadline_s`` is how long the broker waits for an ack before it hands the message to
another consumer: Redis's ``idle_timeout`` (re-claimed by the next reader), JetStream's
``ack_wait``; RabbitMQ redelivers when the consumer's channel closes instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from taskiq import AckableMessage, AsyncBroker, BrokerMessage

from opusclip_lib.distributed.errors import BrokerUnavailableError
from opusclip_lib.errors import ConfigurationError

logger = logging.getLogger(__name__)

Kind = Literal["redis", "rabbitmq", "nats"]
SCHEMES: dict[str, Kind] = {"redis": "redis", "rediss": "redis", "amqp": "rabbitmq",
                            "amqps": "rabbitmq", "nats": "nats", "tls": "nats"}
TASK_NAME = "opusclip.wake"
CONNECT_TIMEOUT_S = 5.0
"""Bound on reaching the broker at startup, and on one publish."""


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    url: str
    prefix: str = "opusclip"
    ack_deadline_s: float = 30.0

    @property
    def kind(self) -> Kind:
        return broker_kind(self.url)


@dataclass(frozen=True, slots=True)
class Wakeup:
    """What a broker message carries: the job to claim and the trace it was enqueued in."""

    job_id: int
    traceparent: str | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"job_id": self.job_id}
        if self.traceparent:
            body["traceparent"] = self.traceparent
        return json.dumps(body).encode()

    @classmethod
    def decode(cls, data: bytes) -> Wakeup | None:
        """The wake-up in ``data``, or ``None`` if it is not one (logged by the caller)."""
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        job_id, trace = body.get("job_id"), body.get("traceparent")
        if type(job_id) is not int or job_id < 1:
            return None
        return cls(job_id, trace if isinstance(trace, str) else None)


def broker_kind(url: str) -> Kind:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(f"broker URL {redact(url)!r}: the scheme must be one of "
                                 f"{', '.join(sorted(SCHEMES))}")
    return SCHEMES[scheme]


def redact(url: str) -> str:
    """``url`` without its user and password: what errors and logs may show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def make_broker(settings: BrokerSettings) -> AsyncBroker:
    """The taskiq broker for ``settings.url``, not started."""
    kind, prefix = settings.kind, settings.prefix
    if kind == "redis":
        from taskiq_redis import RedisStreamBroker

        return RedisStreamBroker(
            settings.url, queue_name=f"{prefix}:wake", consumer_group_name=f"{prefix}:workers",
            idle_timeout=round(settings.ack_deadline_s * 1000), xread_block=1000,
            xread_count=1, maxlen=100_000, socket_connect_timeout=CONNECT_TIMEOUT_S)
    if kind == "rabbitmq":
        from taskiq_aio_pika import AioPikaBroker
        from taskiq_aio_pika.exchange import Exchange
        from taskiq_aio_pika.queue import Queue

        return AioPikaBroker(
            settings.url, exchange=Exchange(name=prefix), qos=1,
            task_queues=[Queue(name=f"{prefix}.wake")],
            dead_letter_queue=Queue(name=f"{prefix}.dead_letter"))
    from nats.js.api import ConsumerConfig
    from taskiq_nats import PullBasedJetStreamBroker

    durable = f"{prefix}_workers"
    return PullBasedJetStreamBroker(
        settings.url, subject=f"{prefix}.wake", stream_name=f"{prefix}_wake", durable=durable,
        consumer_config=ConsumerConfig(durable_name=durable, ack_wait=settings.ack_deadline_s),
        pull_consume_timeout=1.0, connect_timeout=CONNECT_TIMEOUT_S, max_reconnect_attempts=-1,
        allow_reconnect=True)


def unavailable(settings: BrokerSettings, error: BaseException,
                doing: str) -> BrokerUnavailableError:
    url = redact(settings.url)
    return BrokerUnavailableError(f"{settings.kind} broker at {url}: {doing} failed ({error!r})",
                                  broker=settings.kind, url=url)


@asynccontextmanager
async def open_broker(settings: BrokerSettings, *,
                      consumer: bool = False) -> AsyncIterator[AsyncBroker]:
    """The broker, started (connected, its queue or stream declared) and shut down on exit.

    ``consumer``: also open what :meth:`~taskiq.AsyncBroker.listen` reads from. Not reaching
    the broker within :data:`CONNECT_TIMEOUT_S` is :class:`BrokerUnavailableError`.
    """
    broker = make_broker(settings)
    broker.is_worker_process = consumer
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await broker.startup()
    except Exception as error:  # each driver has its own tree; all mean "not reached"
        await shutdown_quietly(broker)
        raise unavailable(settings, error, "connecting") from error
    try:
        yield broker
    finally:
        await shutdown_quietly(broker)


async def shutdown_quietly(broker: AsyncBroker) -> None:
    """Close the broker's connections; a failure is logged, not raised (it is going away)."""
    try:
        await broker.shutdown()
    except Exception:  # a broker that went away cannot be closed politely
        logger.warning("broker shutdown failed", exc_info=True)


async def publish(broker: AsyncBroker, settings: BrokerSettings, wakeup: Wakeup) -> None:
    """Send one wake-up; :class:`BrokerUnavailableError` if the broker refuses or is gone."""
    message = BrokerMessage(task_id=f"job-{wakeup.job_id}", task_name=TASK_NAME,
                            message=wakeup.encode(), labels={})
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await broker.kick(message)
    except Exception as error:  # every driver has its own tree; all mean "not published"
        raise unavailable(settings, error, "publishing") from error


async def drop_names(settings: BrokerSettings) -> None:
    """Delete the queue, stream or exchange that ``settings.prefix`` declared on the server
    (tests and benchmarks clean up after themselves with it)."""
    prefix = settings.prefix
    if settings.kind == "redis":
        from redis.asyncio import Redis

        client = Redis.from_url(settings.url)
        try:
            await client.delete(f"{prefix}:wake")
        finally:
            await client.aclose()
    elif settings.kind == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect(settings.url) as connection:
            channel = await connection.channel()
            for queue in (f"{prefix}.wake", f"{prefix}.dead_letter"):
                await channel.queue_delete(queue)
            await channel.exchange_delete(prefix)
    else:
        import nats

        nats_client = await nats.connect(settings.url)
        try:
            await nats_client.jetstream().delete_stream(f"{prefix}_wake")
        finally:
            await nats_client.close()


def deliveries(broker: AsyncBroker) -> AsyncIterator[AckableMessage | bytes]:
    """The broker's incoming messages (acknowledgeable for the three brokers here)."""
    return broker.listen()
