"""``opusclip bench db``: how fast each backend takes video rows, by insert method, and how close
each path through the layer comes to the raw driver's same path, measured in the same run.

Methods: per-row autocommit (one transaction per row, so one durable commit per row; on
SQLite also with SQLite's default rollback journal instead of the layer's WAL), per-row in one
transaction, batch (``executemany``), bulk (PostgreSQL ``COPY``, multi-row ``INSERT``
elsewhere). The raw drivers run the same paths: per-row ``INSERT ... RETURNING *`` on one
connection (aiosqlite with the layer's pragmas, asyncpg, asyncmy), autocommitted and inside one
transaction, and their fastest load (stdlib ``sqlite3.executemany`` on a file database with
default settings; asyncpg ``copy_records_to_table``; asyncmy ``executemany``). Every method
starts from the same list of dicts, so the raw timings include turning them into tuples (and the
metadata into JSON) with one list comprehension; the layer additionally validates every row,
pools its connections and times every statement.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
import asyncmy
import asyncpg

from opusclip_lib.db import (
    MIGRATIONS,
    Database,
    DatabaseError,
    Video,
    backend_class,
    clear,
    connect,
    parse_url,
    videos,
)
from opusclip_lib.db.maintenance import scratch_database

COLUMNS = videos.VIDEOS.columns
assert COLUMNS[-2:] == ("source", "content_sha256"), "as_tuples writes the columns in this order"
PER_ROW = "per-row autocommit"
PER_ROW_IN_TRANSACTION = "per-row, one transaction"
SQLITE_DEFAULTS = "per-row autocommit, SQLite defaults"
RAW_PER_ROW = "raw per-row autocommit"
RAW_PER_ROW_IN_TRANSACTION = "raw per-row, one transaction"
RAW_CHECKED_IN_TRANSACTION = "raw per-row + checks, one transaction"
# The statement insert_video sends, so the raw per-row paths do the same work on the server.
INSERT_RETURNING = f"{videos.VIDEOS.insert_sql} RETURNING *"
TARGET_RATIO = 100.0
SINGLE_ROW_RATIO = 0.8  # every single-row path through the layer against the raw driver's
LOAD_RATIO = 0.9  # the layer's best batch or bulk load against the raw driver's fastest


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    method: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def make_rows(count: int) -> list[dict[str, Any]]:
    """Distinct, valid videos (11-character ids from the row number)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    rows = []
    for n in range(count):
        digits, value = [], n
        for _ in range(11):
            value, digit = divmod(value, 64)
            digits.append(alphabet[digit])
        youtube_id = "".join(reversed(digits))
        rows.append({"youtube_id": youtube_id, "url": videos.WATCH_URL + youtube_id,
                     "title": f"Benchmark video {n}", "channel": f"channel {n % 50}",
                     "duration_s": 60.0 + n % 3600, "metadata": {"views": n, "tags": ["bench"]}})
    return rows


def checked(rows: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """The layer's own work around a per-row statement, without the layer: each row validated
    as ``insert_video`` validates it, one by one as the loop reaches it."""
    return (videos.VIDEOS.row(row) for row in rows)


def typed(record: Mapping[str, Any]) -> Video:
    """The ``Video`` that ``insert_video`` builds from the row the statement returned."""
    return Video.from_row(dict(record))


def as_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a raw-driver user writes: dicts to tuples in column order, metadata to JSON."""
    return [(r["youtube_id"], r["url"], r["title"], r["channel"], r["duration_s"],
             json.dumps(r["metadata"]), "new", None, None) for r in rows]  # no source, no hash


async def _per_row(db: Database, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        await videos.insert_video(db, **row)


async def _per_row_in_transaction(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.transaction() as tx:
        for row in rows:
            await videos.insert_video(tx, **row)


async def _batch(db: Database, rows: list[dict[str, Any]]) -> None:
    await videos.insert_videos(db, rows)


async def _bulk(db: Database, rows: list[dict[str, Any]]) -> None:
    await videos.insert_videos(db, rows, method="bulk")


Insert = Callable[[Database, list[dict[str, Any]]], Awaitable[None]]
LAYER_METHODS: list[tuple[str, Insert]] = [
    (PER_ROW, _per_row),
    (PER_ROW_IN_TRANSACTION, _per_row_in_transaction),
    ("batch (executemany)", _batch),
    ("bulk (COPY / multi-row)", _bulk),
]


class Target:
    """Where one backend's runs go: a fresh database (or emptied scratch schema) per run."""

    name: ClassVar[str]
    raw_method: ClassVar[str]
    # Extra per-row runs under other settings: (method label, URL options).
    variants: ClassVar[tuple[tuple[str, dict[str, str]], ...]] = ()

    async def fresh_url(self, **options: str) -> str:
        raise NotImplementedError

    async def raw(self, url: str, rows: list[dict[str, Any]]) -> float:
        raise NotImplementedError

    async def raw_per_row(self, url: str, rows: list[dict[str, Any]], *,
                          one_transaction: bool, with_checks: bool = False) -> float:
        """``INSERT ... RETURNING *`` row by row on one driver connection, each row committed
        on its own or all in one transaction (the tables exist already). ``with_checks`` adds
        the layer's own per-row work (:func:`checked`, :func:`typed`) and nothing else."""
        raise NotImplementedError


class SQLiteTarget(Target):
    name = "sqlite"
    raw_method = "raw sqlite3 executemany"
    # The layer's default is WAL; SQLite's own default (rollback journal) costs more fsyncs
    # per commit. Both are measured so the per-row baseline is not a matter of choice.
    variants = ((SQLITE_DEFAULTS, {"journal_mode": "delete"}),)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs = 0

    async def fresh_url(self, **options: str) -> str:
        self.runs += 1
        url = parse_url(f"sqlite:///{self.folder / f'run{self.runs}.db'}")
        return url.with_options(**options).render()

    async def raw(self, url: str, rows: list[dict[str, Any]]) -> float:
        """A new file with the same tables, created and filled by plain ``sqlite3``."""
        path = parse_url(url).path
        vocabulary = backend_class("sqlite")(parse_url(url), min_size=1, max_size=1)
        connection = sqlite3.connect(path)
        try:
            for migration in MIGRATIONS:
                for statement in migration.statements(vocabulary):
                    connection.execute(statement)
            connection.commit()
            sql = videos.VIDEOS.insert_sql
            start = time.perf_counter()
            connection.executemany(sql, as_tuples(rows))
            connection.commit()
            return time.perf_counter() - start
        finally:
            connection.close()

    async def raw_per_row(self, url: str, rows: list[dict[str, Any]], *,
                          one_transaction: bool, with_checks: bool = False) -> float:
        """aiosqlite with the pragmas the layer sets (WAL, synchronous=FULL, foreign keys)."""
        connection = await aiosqlite.connect(parse_url(url).path, isolation_level=None)
        try:
            await connection.executescript("PRAGMA journal_mode=wal; PRAGMA synchronous=full;"
                                           "PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;")
            if with_checks:
                connection.row_factory = sqlite3.Row
            start = time.perf_counter()
            if one_transaction:
                await connection.execute("BEGIN IMMEDIATE")
            if with_checks:
                for params in checked(rows):
                    typed((await connection.execute_fetchall(INSERT_RETURNING, params))[0])
            else:
                for params in as_tuples(rows):
                    await connection.execute_fetchall(INSERT_RETURNING, params)
            if one_transaction:
                await connection.execute("COMMIT")
            return time.perf_counter() - start
        finally:
            await connection.close()


class ServerTarget(Target):
    """A scratch schema/database on a shared server, emptied before each run."""

    variable: ClassVar[str]

    def __init__(self, scratch_url: str) -> None:
        self.url = scratch_url
        self.parts = parse_url(scratch_url)

    async def fresh_url(self, **options: str) -> str:
        async with connect(self.url, min_size=1, max_size=1) as db:
            await clear(db)
        return self.url


class PostgresTarget(ServerTarget):
    name = "postgresql"
    variable = "OPUSCLIP_POSTGRES_URL"
    raw_method = "raw asyncpg COPY"

    async def _connect(self) -> asyncpg.Connection:
        p = self.parts
        return await asyncpg.connect(host=p.host, port=p.port, user=p.user or None,
                                     password=p.password or None, database=p.database,
                                     server_settings={"search_path": p.options["schema"]})

    async def raw(self, url: str, rows: list[dict[str, Any]]) -> float:
        p = self.parts
        connection = await self._connect()
        try:
            start = time.perf_counter()
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "videos", records=as_tuples(rows), columns=list(COLUMNS),
                    schema_name=p.options["schema"])
            return time.perf_counter() - start
        finally:
            await connection.close()

    async def raw_per_row(self, url: str, rows: list[dict[str, Any]], *,
                          one_transaction: bool, with_checks: bool = False) -> float:
        connection = await self._connect()
        sql = backend_class(self.name)(self.parts, min_size=1, max_size=1).sql(INSERT_RETURNING)
        try:
            start = time.perf_counter()
            async with AsyncExitStack() as stack:
                if one_transaction:
                    await stack.enter_async_context(connection.transaction())
                if with_checks:
                    for params in checked(rows):
                        typed((await connection.fetch(sql, *params))[0])
                else:
                    for params in as_tuples(rows):
                        await connection.fetch(sql, *params)
            return time.perf_counter() - start
        finally:
            await connection.close()


class MySQLTarget(ServerTarget):
    name = "mysql"
    variable = "OPUSCLIP_MYSQL_URL"
    raw_method = "raw asyncmy executemany"

    async def _connect(self) -> Any:
        p = self.parts
        return await asyncmy.connect(host=p.host, port=p.port or 3306, user=p.user,
                                     password=p.password, database=p.database,
                                     autocommit=True, stmt_cache_size=256)

    async def raw(self, url: str, rows: list[dict[str, Any]]) -> float:
        """The driver at its best: prepared statement, MariaDB bulk execute, one transaction."""
        connection = await self._connect()
        try:
            sql = videos.VIDEOS.insert_sql.replace("?", "%s")
            start = time.perf_counter()
            await connection.begin()
            async with connection.cursor() as cursor:
                await cursor.executemany(sql, as_tuples(rows))
            await connection.commit()
            return time.perf_counter() - start
        finally:
            await connection.ensure_closed()

    async def raw_per_row(self, url: str, rows: list[dict[str, Any]], *,
                          one_transaction: bool, with_checks: bool = False) -> float:
        connection = await self._connect()
        sql = INSERT_RETURNING.replace("?", "%s")
        try:
            start = time.perf_counter()
            if one_transaction:
                await connection.begin()
            for params in checked(rows) if with_checks else as_tuples(rows):
                async with connection.cursor() as cursor:
                    await cursor.execute(sql, params)
                    found = await cursor.fetchall()
                    if with_checks:
                        names = [column[0] for column in cursor.description]
                        typed(dict(zip(names, found[0], strict=True)))
            if one_transaction:
                await connection.commit()
            return time.perf_counter() - start
        finally:
            await connection.ensure_closed()


async def _layer_run(target: Target, insert: Insert, rows: list[dict[str, Any]],
                     options: dict[str, str]) -> float:
    async with connect(await target.fresh_url(**options), min_size=1, max_size=4) as db:
        start = time.perf_counter()
        await insert(db, rows)
        seconds = time.perf_counter() - start
        assert await videos.count_videos(db) == len(rows)
    return seconds


@dataclass(frozen=True, slots=True)
class PythonCosts:
    """Seconds per row the layer spends in Python around each ``insert_video`` statement,
    timed on their own: checking the row, and building the ``Video`` from what came back."""

    validate_s: float
    model_s: float


async def python_costs(target: Target, rows: list[dict[str, Any]]) -> PythonCosts:
    """Time ``VIDEOS.row`` over ``rows`` and ``Video.from_row`` over the same rows as this
    backend's driver hands them back (timestamps and JSON differ by backend)."""
    async with connect(await target.fresh_url(), min_size=1, max_size=1) as db:
        await videos.insert_videos(db, rows)
        stored = await db.fetch("SELECT * FROM videos")
    settle()
    start = time.perf_counter()
    for row in rows:
        videos.VIDEOS.row(row)
    validate_s = (time.perf_counter() - start) / len(rows)
    start = time.perf_counter()
    for record in stored:
        Video.from_row(record)
    return PythonCosts(validate_s, (time.perf_counter() - start) / len(stored))


def settle() -> None:
    """Start each run clean: no garbage left for the collector, no dirty pages for the kernel
    to write back. A 10,000-row insert on SQLite takes ~80 ms; one full collection took 40 ms
    of it, and the disk was still flushing the 2-second per-row run before it."""
    gc.collect()
    if hasattr(os, "sync"):  # POSIX
        os.sync()


async def run_target(target: Target, rows: list[dict[str, Any]], per_row_rows: int,
                     repeat: int, costs: dict[str, PythonCosts] | None = None) -> list[Result]:
    """Each round runs every method once, so a busy moment on a shared machine hits all of
    them alike instead of skewing one method's median; :func:`settle` runs before each one.
    Each per-row path through the layer runs right before the raw driver's same path, so the
    pair compared by a target sees the machine in the same state."""
    runs: list[tuple[str, Callable[[], Awaitable[float]], int]] = []
    for method, insert in LAYER_METHODS:
        if insert is _per_row:
            subset = rows[:per_row_rows]
            runs += [(label, partial(_layer_run, target, _per_row, subset, options), len(subset))
                     for label, options in ((method, {}), *target.variants)]
        else:
            runs.append((method, partial(_layer_run, target, insert, rows, {}), len(rows)))
    subset = rows[:per_row_rows]
    runs += [(RAW_PER_ROW, partial(_raw_per_row_run, target, subset, False), len(subset)),
             (RAW_PER_ROW_IN_TRANSACTION, partial(_raw_per_row_run, target, rows, True),
              len(rows)),
             (RAW_CHECKED_IN_TRANSACTION,
              partial(_raw_per_row_run, target, rows, True, with_checks=True), len(rows)),
             (target.raw_method, partial(_raw_run, target, rows), len(rows))]
    times: dict[str, list[float]] = {method: [] for method, _, _ in runs}
    paired = {PER_ROW: [RAW_PER_ROW],
              PER_ROW_IN_TRANSACTION: [RAW_PER_ROW_IN_TRANSACTION, RAW_CHECKED_IN_TRANSACTION]}
    follows = {raw for raws in paired.values() for raw in raws}
    by_method = {method: measure for method, measure, _ in runs}
    order = []
    for method, _, _ in runs:
        if method not in follows:
            order.append(method)
        order += paired.get(method, [])
    for _ in range(repeat):
        for method in order:
            settle()
            times[method].append(await by_method[method]())
    results = [Result(target.name, method, count, statistics.median(times[method]))
               for method, _, count in runs]
    if costs is not None:
        costs[target.name] = await python_costs(target, rows[:per_row_rows])
    for result in results:
        print(f"  {result.backend:<10} {result.method:<36} {result.rows_per_s:>12,.0f} rows/s")
    return results


async def _raw_run(target: Target, rows: list[dict[str, Any]]) -> float:
    return await target.raw(await target.fresh_url(), rows)


async def _raw_per_row_run(target: Target, rows: list[dict[str, Any]],
                           one_transaction: bool, *, with_checks: bool = False) -> float:
    url = await target.fresh_url()
    async with connect(url, min_size=1, max_size=1):  # creates the tables
        pass
    return await target.raw_per_row(url, rows, one_transaction=one_transaction,
                                    with_checks=with_checks)


async def _reachable(variable: str) -> tuple[str | None, str]:
    """The server URL, or ``None`` and the reason it is skipped."""
    url = os.environ.get(variable)
    if not url:
        return None, f"{variable} is not set"
    try:
        async with connect(url, migrate=False, min_size=1, max_size=1, acquire_timeout_s=5) as db:
            await db.fetchval("SELECT 1")
    except DatabaseError as exc:
        return None, f"{variable}={parse_url(url)} is unreachable: {exc}"
    return url, ""


def _raw_counterpart(method: str, raw_method: str) -> str:
    """The raw driver's run that ``method`` is compared with."""
    if method in (PER_ROW, SQLITE_DEFAULTS):
        return RAW_PER_ROW
    if method in (PER_ROW_IN_TRANSACTION, RAW_CHECKED_IN_TRANSACTION):
        return RAW_PER_ROW_IN_TRANSACTION
    return method if method.startswith("raw per-row") else raw_method


def breakdown(mine: dict[str, Result], costs: PythonCosts) -> None:
    """Where a per-row path's time goes, in microseconds per row: the raw driver's same path,
    the layer's Python around the statement (timed on its own), and the rest (the statement's
    way through the layer: deadline, timing, pool, plus whatever the machine adds)."""
    for method in (PER_ROW, PER_ROW_IN_TRANSACTION):
        layer_us = mine[method].seconds / mine[method].rows * 1e6
        raw = mine[_raw_counterpart(method, "")]
        raw_us = raw.seconds / raw.rows * 1e6
        validate_us, model_us = costs.validate_s * 1e6, costs.model_s * 1e6
        rest_us = layer_us - raw_us - validate_us - model_us
        print(f"  {method:<26} {layer_us:8.1f} us/row = raw driver {raw_us:.1f} + validation "
              f"{validate_us:.1f} + Video.from_row {model_us:.1f} + statement path and the "
              f"rest {rest_us:.1f}")


def report(results: list[Result], costs: dict[str, PythonCosts] | None = None) -> list[str]:
    """The table, ratios and the targets (and, with ``costs``, where each per-row path's time
    goes); returns the list of missed targets."""
    missed = []
    print(f"\n{'backend':<11}{'method':<37}{'rows':>7}{'median s':>10}{'rows/s':>12}"
          f"{'x per-row':>11}{'x raw':>8}")
    for backend in dict.fromkeys(r.backend for r in results):
        mine = {r.method: r for r in results if r.backend == backend}
        per_row = mine[PER_ROW].rows_per_s
        raw_method = list(mine)[-1]
        for r in mine.values():
            raw = mine[_raw_counterpart(r.method, raw_method)].rows_per_s
            print(f"{r.backend:<11}{r.method:<37}{r.rows:>7}{r.seconds:>10.4f}"
                  f"{r.rows_per_s:>12,.0f}{r.rows_per_s / per_row:>10.1f}x"
                  f"{r.rows_per_s / raw:>7.2f}x")
        if costs is not None and backend in costs:
            breakdown(mine, costs[backend])
        best = max(r.rows_per_s for r in mine.values() if r.method.startswith(("batch", "bulk")))
        checks = [(f"{backend}: batch or bulk >= {TARGET_RATIO:g}x per-row autocommit",
                   best / per_row, TARGET_RATIO)]
        defaults = mine.get(SQLITE_DEFAULTS)
        if defaults is not None:
            checks.append((f"{backend}: batch or bulk >= {TARGET_RATIO:g}x {SQLITE_DEFAULTS}",
                           best / defaults.rows_per_s, TARGET_RATIO))
        for method in (PER_ROW, PER_ROW_IN_TRANSACTION):
            counterpart = _raw_counterpart(method, raw_method)
            checks.append((f"{backend}: {method} >= {SINGLE_ROW_RATIO:g}x {counterpart}",
                           mine[method].rows_per_s / mine[counterpart].rows_per_s,
                           SINGLE_ROW_RATIO))
        checks.append((f"{backend}: batch or bulk >= {LOAD_RATIO:g}x {raw_method}",
                       best / mine[raw_method].rows_per_s, LOAD_RATIO))
        for label, value, goal in checks:
            ok = value >= goal
            print(f"  {'PASS' if ok else 'MISS'} {label}: {value:.2f}")
            if not ok:
                missed.append(label)
        with_checks = mine.get(RAW_CHECKED_IN_TRANSACTION)
        if with_checks is not None:
            raw = mine[RAW_PER_ROW_IN_TRANSACTION].rows_per_s
            print(f"  info {backend}: the layer's checks on the raw driver (validation and "
                  f"Video.from_row) {with_checks.rows_per_s / raw:.2f}x raw; the layer against "
                  f"raw + checks (its statement path alone) "
                  f"{mine[PER_ROW_IN_TRANSACTION].rows_per_s / with_checks.rows_per_s:.2f}x")
    return missed


async def run(args: argparse.Namespace,
              costs: dict[str, PythonCosts] | None = None) -> list[Result]:
    rows = make_rows(args.rows)
    results: list[Result] = []
    print(f"{args.rows:,} rows per method ({args.per_row_rows:,} for {PER_ROW}, reported as "
          f"rows/s), median of {args.repeat}")
    async with AsyncExitStack() as stack:
        if "sqlite" in args.backends:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-db-")))
            results += await run_target(SQLiteTarget(folder), rows, args.per_row_rows,
                                        args.repeat, costs)
        for target in (PostgresTarget, MySQLTarget):
            if target.name not in args.backends:
                continue
            url, reason = await _reachable(target.variable)
            if url is None:
                print(f"  skipping {target.name}: {reason}")
                continue
            scratch = await stack.enter_async_context(scratch_database(url, prefix="bench_db"))
            results += await run_target(target(scratch), rows, args.per_row_rows, args.repeat,
                                        costs)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opusclip bench db", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--per-row-rows", type=int, default=1_000,
                        help="rows for per-row autocommit (it is reported as rows/s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the median counts")
    parser.add_argument("--backends", default="sqlite,postgresql,mysql",
                        type=lambda text: [b.strip() for b in text.split(",") if b.strip()])
    parser.add_argument("--breakdown", action="store_true",
                        help="also say where each per-row path's time goes (us per row)")
    parser.add_argument("--json", type=Path, help="write [{backend, method, rows, seconds}]")
    parser.add_argument("--plot", type=Path, help="write a PNG bar chart (log scale)")
    args = parser.parse_args(argv)
    args.per_row_rows = min(args.per_row_rows, args.rows)

    costs: dict[str, PythonCosts] | None = {} if args.breakdown else None
    results = asyncio.run(run(args, costs))
    if not results:
        print("nothing measured")
        return 1
    missed = report(results, costs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas as pd

        from opusclip_lib.charts.db import rows_per_second

        figure, ax = plt.subplots(figsize=(9, 5.5))
        rows_per_second(pd.DataFrame([asdict(r) for r in results]), ax=ax)
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(figure)
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0
