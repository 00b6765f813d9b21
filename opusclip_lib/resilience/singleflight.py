"""Collapse concurrent calls for one key into one: N simultaneous cache misses, one backend call.

Without it, a cold cache under load sends every waiting caller to the API at once (a "cache
stampede"), spending rate limit and quota on identical requests. Works for any cache backend, within
one process; Redis users in several processes can still race, which only costs a duplicate call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    """The first caller for a key (the leader) runs the load; callers who arrive meanwhile share
    its outcome, result or exception.

    Cancelling a follower leaves the others alone (``asyncio.shield``); cancelling the leader
    hands the load to a follower instead of cancelling everyone. No task is ever spawned, so
    nothing can outlive its callers.
    """

    def __init__(self) -> None:
        self._loads: dict[str, asyncio.Future[Any]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._loads)

    async def do(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        while (shared := self._loads.get(key)) is not None:
            try:
                return await asyncio.shield(shared)
            except asyncio.CancelledError:
                leader_gave_up = shared.cancelled()
                task = asyncio.current_task()
                if not leader_gave_up or (task is not None and task.cancelling()):
                    raise
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._loads[key] = future
        try:
            result = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: with no followers asyncio would log it as lost
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._loads[key]
