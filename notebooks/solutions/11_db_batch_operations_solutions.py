"""Solutions to the exercises of notebooks/11_db_batch_operations.ipynb.

Run: .venv/bin/python notebooks/solutions/11_db_batch_operations_solutions.py
Like the notebook, it uses the database in OPUSCLIP_DATABASE_URL (default: a SQLite file in
work/) and drops and recreates its tables first. Exercise 2 writes its chart to
work/11_batch_sweet_spot.png.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")  # a script: write the chart to a file, no window
import matplotlib.pyplot as plt
from tqdm import tqdm

from opusclip_lib.bench.db import make_rows
from opusclip_lib.config import work_dir
from opusclip_lib.db import Database, DatabaseError, ValidationError, clear, connect, reset, videos


async def import_in_chunks(db: Database, chunks: list[list[dict[str, Any]]]) -> None:
    """Each chunk all or nothing; chunks already in the database are skipped, so a re-run resumes.

    The database is the checkpoint: a chunk is stored completely or not at all, so its last row
    being there means the whole chunk is. ``upsert_videos`` keeps a chunk safe to repeat even if
    that check were skipped (say, two importers racing).
    """
    for chunk in tqdm(chunks, desc="import", unit="chunk"):
        if await videos.find_video(db, chunk[-1]["youtube_id"]) is not None:
            continue
        await videos.upsert_videos(db, chunk)


async def exercise_1_resumable_import(db: Database) -> None:
    await clear(db)
    rows = make_rows(20_000)
    chunks = [rows[start:start + 2_000] for start in range(0, len(rows), 2_000)]
    good = chunks[6][100]
    chunks[6][100] = dict(good, youtube_id="bad id!")  # chunk 7 has a malformed id
    try:
        await import_in_chunks(db, chunks)
    except DatabaseError as error:
        print(f"stopped: {type(error).__name__}: {error}")
    stored = await videos.count_videos(db)
    assert stored == 12_000, "chunks 1-6 are stored, nothing of chunk 7"
    print("stored after the failure:", stored)
    chunks[6][100] = good  # fix the feed, run again: chunks 1-6 are skipped
    await import_in_chunks(db, chunks)
    stored = await videos.count_videos(db)
    assert stored == 20_000, "the re-run stores the rest"
    print("stored after the re-run:", stored)


async def exercise_2_sweet_spot(db: Database) -> None:
    rows = make_rows(5_000)
    rates = {}
    for size in (10, 100, 1_000, 5_000):
        await clear(db)
        start = time.perf_counter()
        async with db.transaction() as tx:
            for first in range(0, len(rows), size):
                await videos.insert_videos(tx, rows[first:first + size])
        rates[size] = len(rows) / (time.perf_counter() - start)
        print(f"chunks of {size:>5}: {rates[size]:>9,.0f} rows/s")
    figure, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(list(rates), list(rates.values()), marker="o")
    ax.set(xscale="log", yscale="log", xlabel="rows per executemany call",
           ylabel="rows/s (log scale)", title=f"Batch size against throughput ({db.name})")
    ax.grid(which="both", alpha=0.3)
    path = work_dir() / "11_batch_sweet_spot.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    assert path.stat().st_size > 0
    print("chart:", path)
    # Each call costs a fixed overhead (validation set-up, a savepoint, a round trip) plus a
    # per-row cost. Going from 10 to 1,000 rows per call spreads the fixed part thin; beyond
    # that only the per-row cost is left, and the curve flattens.


async def exercise_3_idempotent_refresh(db: Database) -> None:
    await clear(db)
    rows = make_rows(1_000)
    stamps = []
    for run in (1, 2):
        await videos.upsert_videos(db, rows)
        stamps.append(await db.fetchval("SELECT max(updated_at) FROM videos"))
        count = await videos.count_videos(db)
        assert count == len(rows), "an upsert never duplicates a row"
        print(f"run {run}: {count} videos")
    print("updated_at moved on the second run:", stamps[1] != stamps[0])
    assert stamps[1] > stamps[0], "the second run rewrote updated_at"
    # Same rows, same count: the second run updated every row in place. Only updated_at (set by
    # the upsert on conflict) shows it happened; created_at keeps the first insert's time.


async def exercise_4_quarantine(db: Database) -> None:
    await clear(db)
    feed = make_rows(1_000)
    feed[10] = dict(feed[10], youtube_id="too short")
    feed[500] = dict(feed[500], title="x" * 600)
    good, rejects = [], []
    for index, row in enumerate(feed):
        try:
            videos.VIDEOS.rows([row])  # the same rules insert_videos applies to the whole batch
        except ValidationError as error:
            rejects.append((index, str(error)))
        else:
            good.append(row)
    await videos.insert_videos(db, good)
    assert [index for index, _ in rejects] == [10, 500]
    assert await videos.count_videos(db) == 998
    print(f"stored {await videos.count_videos(db)}, rejected {len(rejects)}:")
    for index, message in rejects:
        print(f"  row {index}: {message}")
    # Better when rows are independent (a catalogue feed: one bad video should not block 999).
    # Worse when rows only make sense together (a video's clips, an order's lines), and when a
    # silent partial import is harder to notice than a failure: always report the rejects.
    # Rows the database refuses (duplicates) are not caught here; upsert avoids that class.


async def main() -> None:
    async with connect() as db:
        await reset(db)
        print(f"--- on {db.name}")
        for exercise in (exercise_1_resumable_import, exercise_2_sweet_spot,
                         exercise_3_idempotent_refresh, exercise_4_quarantine):
            print(f"--- {exercise.__name__}")
            await exercise(db)


if __name__ == "__main__":
    asyncio.run(main())
