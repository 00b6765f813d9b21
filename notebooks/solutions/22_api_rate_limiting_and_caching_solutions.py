"""Solutions to the exercises of notebooks/22_api_rate_limiting_and_caching.ipynb.

Run: .venv/bin/python notebooks/solutions/22_api_rate_limiting_and_caching_solutions.py
Offline, against the in-process sandbox with Stability's limit scaled down as in the notebook
(15 requests per 1 s, 6 s lock-out). Exercise 4 needs Redis (OPUSCLIP_REDIS_URL) and is skipped
without it; exercise 5 starts a local Redis Cluster and is skipped without redis-server. Charts
go to work/22_*.png. Takes about half a minute.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")  # a script: write the charts to files, no window
import matplotlib.pyplot as plt
import numpy as np
from aiolimiter import AsyncLimiter
from redis.exceptions import RedisClusterException

from opusclip_lib.api import RateLimitError, StabilityClient, YouTubeClient
from opusclip_lib.bench.pipeline import write_catalogue
from opusclip_lib.charts.resilience import requests_per_window
from opusclip_lib.config import redis_url, work_dir
from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines import map_bounded, map_gather
from opusclip_lib.redis_client import delete_matching, open_redis
from opusclip_lib.redis_client.local_servers import LocalCluster, redis_server_available
from opusclip_lib.resilience import (
    Cache,
    Limiter,
    MemoryCache,
    RateLimiter,
    RedisCache,
    Resilience,
    RetryPolicy,
    defaults_for,
)
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, build_app

LIMIT, WINDOW = 15, 1.0


def make_app() -> tuple[Any, list[str]]:
    """The sandbox as in the notebook, and the ids of its 200 videos."""
    config = SandboxConfig()
    config.stability.requests_per_window = LIMIT
    config.stability.window_s = WINDOW
    config.stability.block_s = 6.0
    config.stability.long_side_px = 16
    config.set_latency("stability.generate", 100)
    config.set_latency("youtube.videos.list", 20)
    config.catalogue_path = work_dir() / "22_catalogue.json"
    video_ids = write_catalogue(config.catalogue_path, 200)
    return build_app(config), video_ids


async def thumbnails(app: Any, limiter: Limiter | None, count: int,
                     recorder: Recorder) -> list[Any]:
    """``count`` image requests at once through a policy with ``limiter`` and no retries."""
    app.state.sandbox.reset()
    policy = Resilience("stability", limiter=limiter, retry=RetryPolicy(max_retries=0),
                        recorder=recorder)
    async with StabilityClient(SANDBOX_KEY, transport=httpx.ASGITransport(app),
                               resilience=policy) as sd:
        async def generate(n: int) -> Any:
            try:
                return await sd.generate_core(f"a red fox on a bicycle, clip {n}")
            except RateLimitError as error:
                return error
        return await map_gather(generate, range(count))


def refused(results: list[Any]) -> list[int]:
    return [n for n, result in enumerate(results) if isinstance(result, RateLimitError)]


class Leaky(Limiter):
    """aiolimiter's ``AsyncLimiter`` as the policy's limiter: each request takes ``cost``."""

    def __init__(self, bucket: AsyncLimiter) -> None:
        self.bucket = bucket

    async def acquire(self, cost: float = 1) -> None:
        await self.bucket.acquire(cost)


async def exercise_1_aiolimiter_burst(app: Any) -> None:
    recorder = Recorder()
    results = await thumbnails(app, Leaky(AsyncLimiter(LIMIT, WINDOW)), 60, recorder)
    attempts = recorder.frame("attempt")
    first_429 = attempts.loc[attempts["status"] == 429, "start"].min()
    print(f"1. aiolimiter.AsyncLimiter({LIMIT}, {WINDOW:g}): {len(refused(results))} of 60 "
          f"refused, the first at {first_429:.2f} s")
    ax = requests_per_window(attempts, limit=LIMIT, window_s=WINDOW)
    ax.set_title("AsyncLimiter(15, 1): a burst of 15, then 15/s on top")
    ax.figure.savefig(work_dir() / "22_aiolimiter_burst.png", dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
    # AsyncLimiter is a leaky bucket of capacity 15 draining at 15/s: it admits 15 at once,
    # and the 16th 1/15 s later, while the first 15 are still in the server's 1 s window. It
    # earns a 429, and the 6 s lock-out refuses everything after it.


class Jittered(Limiter):
    """A limiter whose requests reach the server 0-30 ms late, as over a jittery network."""

    def __init__(self, limiter: Limiter, max_delay: float, rng: random.Random) -> None:
        self.limiter = limiter
        self.max_delay = max_delay
        self.rng = rng

    async def acquire(self, cost: float = 1) -> None:
        await self.limiter.acquire(cost)
        await asyncio.sleep(self.rng.uniform(0, self.max_delay))


async def exercise_2_headroom(app: Any) -> None:
    print("2. RateLimiter with 0-30 ms of jitter after it, 60 requests, server limit 15 per 1 s")
    for limit in (15, 14, 13):
        jittered = Jittered(RateLimiter(limit, WINDOW), 0.030, random.Random(limit))
        results = await thumbnails(app, jittered, 60, Recorder())
        print(f"   client limit {limit}: {len(refused(results))} refused; "
              f"{limit / LIMIT:.0%} of the allowed rate")
    # At exactly the limit, a request delayed more than the one 15 places after it lands
    # within the same 1 s window as 15 others: 429, then the lock-out. One request less per
    # window (7% headroom) absorbs 30 ms of jitter: 1/14 s - 1/15 s is ~5 ms per gap, 67 ms
    # over a window. The cost is the same 7% of throughput.


def zipf_requests(video_ids: list[str], count: int = 1_500) -> list[str]:
    rng = np.random.default_rng(7)
    popularity = 1 / np.arange(1, len(video_ids) + 1) ** 1.1
    return [video_ids[k] for k in rng.choice(len(video_ids), size=count,
                                             p=popularity / popularity.sum())]


async def run_workload(app: Any, cache: Cache, requests: list[str]) -> tuple[float, int]:
    """Steady-state hit rate (after 500 requests) and the API calls made."""
    recorder = Recorder()
    policy = defaults_for("youtube", cache=cache, recorder=recorder)
    async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app),
                             resilience=policy) as yt:
        await map_bounded(lambda video_id: yt.videos_page([video_id]), requests, limit=10)
        calls = yt.usage.calls
    return float(recorder.frame("cache")["hit"].iloc[500:].mean()), calls


async def exercise_3_cache_size(app: Any, video_ids: list[str]) -> None:
    requests = zipf_requests(video_ids)
    sizes = [10, 25, 50, 100, 200]
    rates = [(await run_workload(app, MemoryCache(maxsize=size), requests))[0] for size in sizes]
    print("3. steady-state hit rate by cache size: "
          + ", ".join(f"{size}: {rate:.0%}" for size, rate in zip(sizes, rates, strict=True)))
    assert rates[-1] > rates[0]  # a bigger LRU never holds less of the popular head
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(sizes, [100 * rate for rate in rates], marker="o")
    ax.set_xlabel("cache size (entries, LRU)")
    ax.set_ylabel("steady-state hit rate (%)")
    ax.set_title("Zipf(1.1) over 200 videos: hit rate vs cache size")
    ax.grid(alpha=0.3)
    fig.savefig(work_dir() / "22_cache_size.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    # Under Zipf(1.1) the 50 most popular of 200 videos draw about four fifths of all
    # requests, and an LRU cache of 50 entries mostly holds them: they are requested so often
    # that they are rarely the least recently used.


async def exercise_4_shared_cache(app: Any, video_ids: list[str]) -> None:
    url = redis_url()
    if url is None:
        print("4. skipped: set OPUSCLIP_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        return
    prefix = f"opusclip:solutions22:{uuid.uuid4().hex[:8]}:"
    requests = zipf_requests(video_ids)
    async with open_redis(url) as redis:
        def shared() -> RedisCache:
            return RedisCache(redis, prefix=prefix)
        try:
            first = await run_workload(app, shared(), requests)
            second = await run_workload(app, shared(), requests)  # a new policy: "process 2"
        finally:
            await delete_matching(redis, prefix + "*")
    print(f"4. first process: {first[0]:.0%} steady-state hits, {first[1]} API calls; "
          f"second process: {second[0]:.0%}, {second[1]} API calls")
    assert second[1] == 0
    # The second policy has an empty memory but shares Redis: every answer the first one
    # stored is a hit, so it makes no API call at all.


async def exercise_5_crossslot() -> None:
    if not redis_server_available():
        print("5. skipped: redis-server is not installed")
        return
    with LocalCluster() as cluster:
        async with open_redis(cluster.url) as redis:
            try:
                await redis.mset({"video:abc:title": "A fox", "video:abc:views": 12})
                untagged = "accepted"
            except RedisClusterException as refused:  # redis-py checks the slots before sending
                untagged = f"refused: {refused}"
            await redis.mset({"video:{abc}:title": "A fox", "video:{abc}:views": 12})
            slots = {key: await redis.cluster_keyslot(key)
                     for key in ("video:abc:title", "video:abc:views",
                                 "video:{abc}:title", "video:{abc}:views")}
    print(f"5. MSET without a tag: {untagged}")
    print(f"   slots: {slots}")
    assert slots["video:{abc}:title"] == slots["video:{abc}:views"]
    # Without a tag the two keys hash to different slots, so no single node can run the MSET
    # (Redis would answer CROSSSLOT; redis-py refuses before sending). With "{abc}" only "abc"
    # is hashed: both keys share its slot and the MSET is one command on one node.


async def main() -> None:
    app, video_ids = make_app()
    await exercise_1_aiolimiter_burst(app)
    await exercise_2_headroom(app)
    await exercise_3_cache_size(app, video_ids)
    await exercise_4_shared_cache(app, video_ids)
    await exercise_5_crossslot()


if __name__ == "__main__":
    asyncio.run(main())
