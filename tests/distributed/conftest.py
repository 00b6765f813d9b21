"""Fixtures of the tests that run worker processes: scratch tables on PostgreSQL and a broker
namespace of their own, so they can run beside every other test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from opusclip_lib.db import Database, connect
from opusclip_lib.distributed.brokers import BrokerSettings, drop_names


@pytest.fixture
def database_url(postgres_url: str, scratch_namespaces: Callable[[str], str]) -> str:
    return scratch_namespaces(postgres_url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with connect(database_url, min_size=1, max_size=2) as database:
        for table in ("workers", "api_calls", "processing_jobs", "videos"):
            await database.execute(f"DELETE FROM {table}")
        yield database


@pytest.fixture
async def broker(broker_url: str) -> AsyncIterator[BrokerSettings]:
    """A namespace on each broker, or on the ones a test names
    (``@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)``)."""
    settings = BrokerSettings(broker_url, prefix=f"h_broker_{uuid.uuid4().hex[:10]}")
    yield settings
    await drop_names(settings)
