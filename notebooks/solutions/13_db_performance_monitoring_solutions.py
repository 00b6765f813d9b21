"""Solutions to the exercises of notebooks/13_db_performance_monitoring.ipynb.

Run: .venv/bin/python notebooks/solutions/13_db_performance_monitoring_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: the SQLite file in work/) and
starts from an empty schema. A script starts its own event loop with asyncio.run(); in a
notebook, paste the body of a function into a cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from cachetools import TTLCache

from opusclip_lib import config
from opusclip_lib.db import Database, PoolTimeoutError, Video, connect, maintenance, reset, videos
from opusclip_lib.db.cache import MemoryStore, VideoCache
from opusclip_lib.metrics import percentiles
from opusclip_lib.pipelines import map_bounded
from opusclip_lib.resilience.singleflight import SingleFlight

N_VIDEOS = 1000
N_LOOKUPS = 3000
CHANNELS = [f"channel-{n:02d}" for n in range(20)]
CATALOGUE = [{"youtube_id": f"nb13vid{n:04d}", "title": f"Talk #{n}",
              "channel": CHANNELS[n % len(CHANNELS)]} for n in range(N_VIDEOS)]


def zipf_lookups(rng: np.random.Generator, count: int = N_LOOKUPS) -> list[str]:
    """YouTube ids, the video of popularity rank k requested with probability ~ 1/k^1.1."""
    weights = 1 / np.arange(1, N_VIDEOS + 1) ** 1.1
    by_popularity = rng.permutation(N_VIDEOS)
    picks = by_popularity[rng.choice(N_VIDEOS, size=count, p=weights / weights.sum())]
    return [CATALOGUE[i]["youtube_id"] for i in picks]


def video_queries(db: Database) -> int:
    """Look-ups of one video by YouTube id since the recorder was last cleared."""
    return int((db.recorder.frame("query")["name"] == "get videos").sum())


async def exercise_1_cache_stampede(db: Database) -> None:
    lookups = zipf_lookups(np.random.default_rng(13))
    for label, shared in (("plain", False), ("single flight", True)):
        cache = VideoCache(db, MemoryStore(ttl_s=600))
        flight = SingleFlight()

        async def get(youtube_id: str, cache: VideoCache = cache,
                      flight: SingleFlight = flight, shared: bool = shared) -> Video | None:
            if shared:  # concurrent look-ups of one id wait for the first one's answer
                return await flight.do(youtube_id, lambda: cache.get(youtube_id))
            return await cache.get(youtube_id)

        db.recorder.clear()
        await map_bounded(get, lookups, limit=50)
        assert video_queries(db) == cache.misses, "every miss is one query"
        if shared:
            assert cache.misses == len(set(lookups)), "one query per distinct video, no more"
        print(f"{label:>13}: {cache.misses} misses for {len(set(lookups))} distinct videos, "
              f"{video_queries(db)} database queries")
    # With 50 look-ups in flight, a popular video is often requested again while its first
    # (missing) look-up is still reading the database: each of those requests misses too and
    # sends its own query. SingleFlight makes the latecomers wait for the first query instead.


class NegativeCache:
    """Remembers "no such video" for a short while, in front of a VideoCache."""

    def __init__(self, cache: VideoCache, *, ttl_s: float = 5.0) -> None:
        self.cache = cache
        self.unknown: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=ttl_s)

    async def get(self, youtube_id: str) -> Video | None:
        if youtube_id in self.unknown:
            return None
        video = await self.cache.get(youtube_id)
        if video is None:
            self.unknown[youtube_id] = True
        return video


async def exercise_2_unknown_videos(db: Database) -> None:
    rng = np.random.default_rng(2)
    unknown = [f"nb13unk{n:04d}" for n in range(50)]
    lookups = [unknown[rng.integers(len(unknown))] if rng.random() < 0.2 else youtube_id
               for youtube_id in zipf_lookups(rng)]
    asked_unknown = sum(youtube_id in set(unknown) for youtube_id in lookups)
    plain = VideoCache(db, MemoryStore(ttl_s=600))
    negative = NegativeCache(VideoCache(db, MemoryStore(ttl_s=600)))
    queries = {}
    for label, get in (("VideoCache", plain.get), ("with a negative cache", negative.get)):
        db.recorder.clear()
        for youtube_id in lookups:
            await get(youtube_id)
        queries[label] = video_queries(db)
        print(f"{label:>22}: {video_queries(db)} database queries "
              f"({asked_unknown} look-ups of {len(unknown)} unknown videos)")
    assert queries["with a negative cache"] < queries["VideoCache"]
    # VideoCache stores only videos it found, so every look-up of an unknown id is a query.
    # Keep "not found" briefly: the video may be inserted a second later (a user just submitted
    # it), and a long-lived negative entry would hide it. Inserts should invalidate it too.


async def exercise_3_pool_timeouts() -> None:
    hold_s, timeout_s, max_size, burst = 0.02, 0.1, 2, 64
    async with connect(config.database_url(), min_size=1, max_size=max_size,
                       acquire_timeout_s=timeout_s, migrate=False) as pool:

        async def request(_: int) -> str:
            try:
                async with pool.acquire() as connection:
                    await connection.fetchval("SELECT count(*) FROM videos")
                    await asyncio.sleep(hold_s)
            except PoolTimeoutError:
                return "timeout"
            return "ok"

        results = await asyncio.gather(*(request(n) for n in range(burst)))
    predicted_ok = max_size * round(timeout_s / hold_s)
    assert results.count("ok") >= max_size, "the first round is always served"
    assert results.count("timeout") > 0, "a burst 32 rounds long cannot fit in 0.1 s"
    print(f"{results.count('ok')} answered, {results.count('timeout')} PoolTimeoutError "
          f"(predicted about {predicted_ok} answered)")
    # Requests are served in rounds of 2 (one per connection), one round per 0.02 s hold: in
    # the 0.1 s a request is willing to wait, 5 rounds start, so about 10 requests are answered
    # and everyone still waiting after 0.1 s gives up.


async def exercise_4_find_the_slow_query(db: Database) -> None:
    # At 1,000 rows every query is fast; a missing index shows once the table grows.
    await videos.insert_videos(db, [{"youtube_id": f"nb13b{n:06d}", "title": f"Big #{n}"}
                                    for n in range(20_000)], method="bulk")
    rng = np.random.default_rng(4)
    operations: dict[str, Callable[[int], Awaitable[Any]]] = {
        "find one video": lambda n: videos.find_video(db, CATALOGUE[n]["youtube_id"]),
        "list a channel": lambda n: videos.list_videos(db, channel=CHANNELS[n % 20], limit=20),
        "search titles": lambda n: db.fetch("SELECT id FROM videos WHERE title LIKE ?",
                                            (f"%#{n}%",), name="search titles"),
    }
    requests = list(zip(rng.choice(list(operations), size=400, p=[0.7, 0.2, 0.1]).tolist(),
                        rng.integers(0, N_VIDEOS, size=400).tolist(), strict=True))
    db.recorder.clear()
    await map_bounded(lambda request: operations[request[0]](request[1]), requests, limit=8)
    print(percentiles(db.recorder.frame("query"), "name").sort_values("p50_ms"))
    plan = await maintenance.explain(db, "SELECT id FROM videos WHERE title LIKE ?", ("%#7%",))
    print(plan)
    full_scan = {"sqlite": "SCAN", "postgresql": "Seq Scan", "mysql": "ALL"}[db.name]
    assert full_scan in plan, "a leading wildcard reads every row"
    # The plan reads every row: a B-tree index is sorted by the whole title, so it cannot find
    # "contains #7" (a leading wildcard). Use full-text search (PostgreSQL tsvector + GIN,
    # MariaDB FULLTEXT, SQLite FTS5) or a trigram index (PostgreSQL pg_trgm) instead.


async def main() -> None:
    async with connect(config.database_url()) as db:
        await reset(db)
        await videos.insert_videos(db, CATALOGUE, method="bulk")
        print(f"--- backend: {db.name}")
        for exercise in (exercise_1_cache_stampede, exercise_2_unknown_videos):
            print(f"--- {exercise.__name__}")
            await exercise(db)
        print("--- exercise_3_pool_timeouts")
        await exercise_3_pool_timeouts()
        print("--- exercise_4_find_the_slow_query")
        await exercise_4_find_the_slow_query(db)


if __name__ == "__main__":
    asyncio.run(main())
