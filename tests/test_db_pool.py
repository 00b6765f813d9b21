"""The layer's own pool (:mod:`opusclip_lib.db.pool`) and statement deadlines
(:class:`opusclip_lib.db.timeouts.Deadlines`), on stand-in connections: no server, no clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from opusclip_lib.db.errors import OperationalError
from opusclip_lib.db.pool import Pool
from opusclip_lib.db.timeouts import Deadlines

NEVER_S = 3600.0  # a deadline no test reaches


class Stub:
    """A driver connection: a number, and whether it is still open."""

    numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.numbers)
        self.open = True

    def __repr__(self) -> str:
        return f"Stub({self.number})"


def make_pool(*, min_size: int = 0, max_size: int = 2, retired: list[Stub] | None = None,
              idle_s: float = 300.0) -> tuple[Pool[Stub], list[Stub]]:
    opened: list[Stub] = []

    async def connect() -> Stub:
        opened.append(Stub())
        return opened[-1]

    pool = Pool("stub", connect, min_size=min_size, max_size=max_size, deadlines=Deadlines(),
                alive=lambda stub: stub.open,
                retire=None if retired is None else retired.append, idle_s=idle_s)
    return pool, opened


async def test_fill_opens_min_size_and_the_last_returned_is_lent_first() -> None:
    pool, opened = make_pool(min_size=2)
    await pool.fill()
    assert pool.size == 2
    first = await pool.acquire(NEVER_S)
    second = await pool.acquire(NEVER_S)
    assert {first, second} == set(opened)
    pool.put_back(first)
    pool.put_back(second)
    assert await pool.acquire(NEVER_S) is second
    assert len(opened) == 2


async def test_a_connection_closed_while_idle_is_replaced() -> None:
    pool, opened = make_pool(max_size=1)
    stub = await pool.acquire(NEVER_S)
    pool.put_back(stub)
    stub.open = False  # the server ended the session while it sat idle
    fresh = await pool.acquire(NEVER_S)
    assert fresh is not stub
    assert opened == [stub, fresh]
    assert pool.size == 1


async def test_a_waiting_task_gets_the_connection_given_back() -> None:
    pool, _ = make_pool(max_size=1)
    held = await pool.acquire(NEVER_S)
    waiter = asyncio.create_task(pool.acquire(NEVER_S))
    await asyncio.sleep(0)  # the task is now waiting
    assert not waiter.done()
    pool.put_back(held)
    assert await waiter is held


async def test_a_forgotten_connection_frees_its_slot_for_a_waiting_task() -> None:
    pool, opened = make_pool(max_size=1)
    held = await pool.acquire(NEVER_S)
    waiter = asyncio.create_task(pool.acquire(NEVER_S))
    await asyncio.sleep(0)
    held.open = False
    pool.forget(held)  # the backend closed it
    fresh = await waiter
    assert fresh is not held
    assert opened == [held, fresh]
    assert pool.size == 1


async def test_an_exhausted_pool_times_out_and_forgets_the_waiter() -> None:
    pool, _ = make_pool(max_size=1)
    held = await pool.acquire(NEVER_S)
    with pytest.raises(TimeoutError):
        await pool.acquire(0.01)
    pool.put_back(held)  # nobody waits any more: it goes back to the idle stack
    assert await pool.acquire(NEVER_S) is held


async def test_a_connection_handed_to_a_task_cancelled_at_that_moment_is_passed_on() -> None:
    pool, opened = make_pool(max_size=1)
    held = await pool.acquire(NEVER_S)
    waiter = asyncio.create_task(pool.acquire(NEVER_S))
    await asyncio.sleep(0)
    pool.put_back(held)  # handed over...
    waiter.cancel()  # ...and the task cancelled before it ran again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await pool.acquire(NEVER_S) is held
    assert opened == [held]


async def test_close_refuses_new_and_waiting_borrowers_and_tracks_the_borrowed() -> None:
    pool, _ = make_pool(max_size=2)
    held = await pool.acquire(NEVER_S)
    idle = await pool.acquire(NEVER_S)
    pool.put_back(idle)
    assert pool.close() == [idle]
    with pytest.raises(OperationalError, match="pool is closed"):
        await pool.acquire(NEVER_S)
    assert pool.borrowed == {held}
    returned = asyncio.create_task(pool.returned())
    await asyncio.sleep(0)
    assert not returned.done()
    pool.forget(held)
    await returned
    assert pool.size == 0


async def test_a_task_waiting_when_the_pool_closes_gets_an_error() -> None:
    pool, _ = make_pool(max_size=1)
    await pool.acquire(NEVER_S)
    waiter = asyncio.create_task(pool.acquire(NEVER_S))
    await asyncio.sleep(0)
    pool.close()
    with pytest.raises(OperationalError, match="pool is closed"):
        await waiter


async def test_idle_connections_above_min_size_are_retired() -> None:
    retired: list[Stub] = []
    pool, opened = make_pool(min_size=1, max_size=3, retired=retired, idle_s=0.0)
    stubs = [await pool.acquire(NEVER_S) for _ in range(3)]
    for stub in stubs:
        pool.put_back(stub)
    await asyncio.sleep(0)  # the retiring timer, due at once, runs on the next loop pass
    await asyncio.sleep(0)
    assert retired == stubs[:2]  # the longest idle first, down to min_size
    assert pool.size == 1
    assert await pool.acquire(NEVER_S) is stubs[2]
    assert len(opened) == 3


async def test_a_deadline_ends_a_wait_with_timeout_error_and_takes_its_cancel_back() -> None:
    deadlines = Deadlines()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await deadlines.run(never, 0.01)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadlines = Deadlines()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(deadlines.run(never, NEVER_S))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_shorter_deadline_started_later_fires_first_and_alone() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    long_wait: asyncio.Future[str] = loop.create_future()
    long_task = asyncio.create_task(deadlines.run(long_wait, NEVER_S))
    await asyncio.sleep(0)  # the timer is armed for the long deadline
    with pytest.raises(TimeoutError):
        await deadlines.run(loop.create_future(), 0.01)
    assert not long_task.done()
    long_wait.set_result("done")
    assert await long_task == "done"


async def test_deadlines_of_finished_statements_never_fire() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    for value in range(3):
        done: asyncio.Future[int] = loop.create_future()
        done.set_result(value)
        assert await deadlines.run(done, 0.01) == value
    await asyncio.sleep(0.02)  # past every deadline above: nothing is cancelled
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
