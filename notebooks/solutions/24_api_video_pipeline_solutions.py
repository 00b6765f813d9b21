"""Solutions to the exercises of notebooks/24_api_video_pipeline.ipynb.

Run: .venv/bin/python notebooks/solutions/24_api_video_pipeline_solutions.py
It replays its own cassettes (``cassettes/24_api_video_pipeline_solutions/``) with the same
latencies as the notebook, so the timings mean the same thing; record them again with
``OPUSCLIP_RECORD=sandbox .venv/bin/python -m opusclip_lib.cassettes record
24_api_video_pipeline_solutions``. This is a script, so it starts its own event loop with
asyncio.run(); in a notebook, paste the body of a function into a cell and ``await`` it.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

from opusclip_lib.api import NotFoundError
from opusclip_lib.offline import api_clients
from opusclip_lib.pipelines import Stage, run_pipeline
from opusclip_lib.shorts import Short, fetch_video, make_thumbnail, record_voiceover, short_stages
from opusclip_lib.workflow import Services

FOLDER = "24_api_video_pipeline_solutions"
VIDEO_IDS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb", "cpCGybY9lMR"]
LATENCY_S = {"youtube": 0.2, "openai": 0.8, "stability": 1.2, "elevenlabs": 0.6}
WORKERS = {"youtube": 1, "openai": 2, "stability": 2, "elevenlabs": 2}


async def exercise_1_batch_the_youtube_stage() -> None:
    async with api_clients(FOLDER, "exercise_1", latency_s=LATENCY_S) as api:
        videos = await api.youtube.videos(VIDEO_IDS)  # one videos.list call for up to 50 ids
        shorts = [Short(video.id, video=video) for video in videos]
        done = await run_pipeline(shorts, short_stages(api, WORKERS)[1:])  # from OpenAI on
        assert len(done) == len(VIDEO_IDS)
        assert api.youtube.quota_used == 1, "one videos.list call for all the ids"
        print(f"{len(done)} shorts for {api.youtube.quota_used} quota unit(s) instead of "
              f"{len(VIDEO_IDS)}")
    # One unit per 50 videos instead of one per video: 1,000 videos cost 20 units, not 1,000,
    # and 20 requests instead of 1,000 (with 20 round trips of latency, not 1,000).


async def exercise_2_move_the_bottleneck() -> None:
    # Prediction: the batch takes about the slowest stage's time per video (latency / workers)
    # times the number of videos, plus one pass through the other stages.
    # 1 worker:  Stability 1.2 s per video -> ~4 x 1.2 + 0.2 + 0.8 + 0.6 = ~6.4 s
    # 2 workers: 0.6 s per video, still the slowest -> ~4.3 s
    # 4 workers: 0.3 s per video; now OpenAI (0.8 s / 2 = 0.4 s per video) is the bottleneck
    for workers in (1, 2, 4):
        # The three runs make the same requests, so one cassette answers all of them.
        async with api_clients(FOLDER, "exercise_2", latency_s=LATENCY_S) as api:
            started = time.perf_counter()
            await run_pipeline([Short(video_id) for video_id in VIDEO_IDS],
                               short_stages(api, {**WORKERS, "stability": workers}))
            elapsed_s = time.perf_counter() - started
            print(f"{workers} Stability worker(s): {elapsed_s:.1f} s")
            if workers == 1:  # one worker makes the four Stability calls one after another
                assert elapsed_s >= len(VIDEO_IDS) * LATENCY_S["stability"], elapsed_s


async def thumbnail_and_voiceover(api: Services, short: Short) -> Short:
    """Both need only the highlight, so they can run at the same time."""
    async with asyncio.TaskGroup() as group:
        group.create_task(make_thumbnail(api, short))
        group.create_task(record_voiceover(api, short))
    return short


async def exercise_3_thumbnail_and_voiceover_at_once() -> None:
    async with api_clients(FOLDER, "exercise_3", latency_s=LATENCY_S) as api:
        stages = [*short_stages(api, WORKERS)[:2],
                  Stage("media", partial(thumbnail_and_voiceover, api), workers=2)]
        started = time.perf_counter()
        await run_pipeline([Short(video_id) for video_id in VIDEO_IDS], stages)
        print(f"thumbnail and voice-over together: {time.perf_counter() - started:.1f} s")
    # Each video's last stage now takes max(1.2, 0.6) = 1.2 s instead of 1.2 + 0.6 s, so the
    # last video is done 0.6 s sooner; the pace is still two Stability calls at a time. On the
    # timeline the ElevenLabs bars sit under the Stability bars instead of after them.


async def exercise_4_a_video_that_is_gone() -> None:
    dropped: list[str] = []

    async def fetch_or_drop(api: Services, short: Short) -> list[Short]:
        try:
            return [await fetch_video(api, short)]
        except NotFoundError:
            dropped.append(short.video_id)
            return []  # with fan_out=True, an empty list sends nothing downstream

    ids = [*VIDEO_IDS[:2], "doesNotExis"]
    async with api_clients(FOLDER, "exercise_4", latency_s=LATENCY_S) as api:
        stages = [Stage("youtube", partial(fetch_or_drop, api), fan_out=True),
                  *short_stages(api, WORKERS)[1:]]
        done = await run_pipeline([Short(video_id) for video_id in ids], stages)
    assert sorted(short.video_id for short in done) == sorted(VIDEO_IDS[:2])
    assert dropped == ["doesNotExis"]
    print(f"made {sorted(short.video_id for short in done)}; dropped {dropped}")


async def main() -> None:
    for exercise in (exercise_1_batch_the_youtube_stage, exercise_2_move_the_bottleneck,
                     exercise_3_thumbnail_and_voiceover_at_once, exercise_4_a_video_that_is_gone):
        print(f"--- {exercise.__name__}")
        await exercise()


if __name__ == "__main__":
    asyncio.run(main())
