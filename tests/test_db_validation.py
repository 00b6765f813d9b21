"""One rule set for bad input, the same on SQLite, PostgreSQL and MariaDB (issue 9, items 13-16).

Property-based (Hypothesis): for ids, titles, URLs, numbers and JSON, every backend either
refuses a value with a ``ValidationError`` (nothing stored) or stores it and hands back exactly
the same value. Where a value is refused is decided by the rules in
:mod:`opusclip_lib.db.validate`, in Python, so the outcome cannot depend on the backend; the
servers prove that what the rules accept they really store, unchanged. Then the inputs the
chaos testing found, one by one.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opusclip_lib.db import (
    Database,
    InvalidUrlError,
    InvalidYouTubeIdError,
    ValidationError,
    api_calls,
    clips,
    jobs,
    videos,
)
from opusclip_lib.db.validate import HTTP_URL, JSON_MAX_DEPTH, YOUTUBE_ID
from opusclip_lib.workflow.batch import run_batch

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
_serial = itertools.count()

# Any code point, lone surrogates and NUL included: what a caller may hand over.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
ids = st.one_of(st.from_regex(YOUTUBE_ID, fullmatch=True),
                st.from_regex(YOUTUBE_ID, fullmatch=True).map(lambda i: i + "\n"),
                st.tuples(st.from_regex(YOUTUBE_ID, fullmatch=True),
                          st.from_regex(YOUTUBE_ID, fullmatch=True)).map("\n".join),
                any_text)
titles = st.one_of(any_text, st.text(max_size=600),
                   st.text(min_size=495, max_size=505, alphabet="ab\n\t 😀é"))
urls = st.one_of(st.from_regex(HTTP_URL, fullmatch=True),
                 st.from_regex(HTTP_URL, fullmatch=True).map(lambda u: u + "\n"),
                 st.tuples(st.from_regex(HTTP_URL, fullmatch=True), any_text).map("".join),
                 any_text)
numbers = st.one_of(st.floats(), st.integers(), st.integers(min_value=2**53 - 2,
                                                            max_value=2**53 + 2))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text,
                         st.floats(min_value=9e15, max_value=2e16), st.just("\N{GRINNING FACE}"))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(any_text, inner, max_size=4),
                            st.dictionaries(st.integers(), inner, max_size=2),
                            st.frozensets(st.integers(), max_size=2),
                            st.tuples(inner)),
    max_leaves=12)


def fresh_id() -> str:
    """An id no other example used (11 characters, so valid)."""
    return f"h{next(_serial):010d}"


def is_text(value: str, max_len: int) -> bool:
    """The text rules, written out independently of the validator."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value and len(value) <= max_len


async def stored_or_refused(insert: Any) -> Any:
    """The inserted row, or ``None`` when the rules refused the value; anything else fails."""
    try:
        return await insert
    except ValidationError:
        return None


@given(youtube_id=ids)
@PROPERTY
async def test_youtube_ids_are_refused_or_round_trip(db: Database, youtube_id: str) -> None:
    expected = re.fullmatch(r"\A[A-Za-z0-9_-]{11}\Z", youtube_id) is not None
    stored = await stored_or_refused(videos.insert_videos(db, [{"youtube_id": youtube_id}]))
    assert (stored is not None) == expected
    if expected:
        found = await videos.find_video(db, youtube_id)
        assert found is not None
        assert found.youtube_id == youtube_id
        await videos.delete_video(db, found.id)
    else:
        assert await videos.count_videos(db) == 0


@given(title=titles)
@PROPERTY
async def test_titles_are_refused_or_round_trip(db: Database, title: str) -> None:
    stored = await stored_or_refused(videos.insert_video(db, fresh_id(), title=title))
    assert (stored is not None) == is_text(title, 500)
    if stored is not None:
        assert (await videos.get_video(db, stored.id)).title == title


@given(url=urls)
@PROPERTY
async def test_urls_are_refused_or_round_trip(db: Database, url: str) -> None:
    expected = is_text(url, 2048) and re.fullmatch(HTTP_URL.pattern + r"\Z", url, re.ASCII)
    stored = await stored_or_refused(videos.insert_video(db, fresh_id(), url=url))
    assert (stored is not None) == bool(expected)
    if stored is not None:
        assert (await videos.get_video(db, stored.id)).url == url


@given(duration=numbers)
@PROPERTY
async def test_numbers_are_refused_or_round_trip(db: Database, duration: float) -> None:
    exact = isinstance(duration, float) or abs(duration) <= 2**53
    expected = exact and math.isfinite(duration) and duration >= 0
    stored = await stored_or_refused(videos.insert_video(db, fresh_id(), duration_s=duration))
    assert (stored is not None) == expected
    if stored is not None:
        assert (await videos.get_video(db, stored.id)).duration_s == duration


@given(metadata=json_values)
@PROPERTY
async def test_json_is_refused_or_round_trips(db: Database, metadata: Any) -> None:
    stored = await stored_or_refused(videos.insert_video(db, fresh_id(), metadata=metadata))
    # A batch holding JSON text takes the value-by-value path: the verdict must not change.
    batch = [{"youtube_id": fresh_id(), "metadata": metadata},
             {"youtube_id": fresh_id(), "metadata": "[1]"}]
    assert (await stored_or_refused(videos.insert_videos(db, batch)) is None) == (stored is None)
    if stored is None:
        return
    # A str is JSON text (stored decoded); anything else is stored as Python's json writes it
    # (a tuple as an array, a number key as its string) and comes back as that, exactly.
    as_json = json.loads(metadata if isinstance(metadata, str) else json.dumps(metadata))
    assert (await videos.get_video(db, stored.id)).metadata == as_json


# --- the inputs the chaos testing found ---------------------------------------------------


@pytest.mark.parametrize("method", ["batch", "bulk"])
async def test_two_ids_joined_by_a_newline_are_one_bad_id(db: Database, method: str) -> None:
    with pytest.raises(InvalidYouTubeIdError):
        await videos.insert_videos(db, [{"youtube_id": "AAAAAAAAAAA\nBBBBBBBBBBB"}],
                                   method=method)  # type: ignore[arg-type]
    assert await videos.count_videos(db) == 0


@pytest.mark.parametrize("url", ["https://a.example/x\nhttps://b.example/y",
                                 "https://a.example/x\n"])
async def test_a_url_with_a_newline_is_refused(db: Database, url: str) -> None:
    with pytest.raises(InvalidUrlError):
        await videos.insert_videos(db, [{"youtube_id": fresh_id(), "url": url}])
    assert await videos.count_videos(db) == 0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2**70])
async def test_non_finite_or_inexact_numbers_are_refused(db: Database, value: float) -> None:
    with pytest.raises(ValidationError):
        await videos.insert_video(db, fresh_id(), duration_s=value)
    with pytest.raises(ValidationError):
        await videos.insert_videos(db, [{"youtube_id": fresh_id(), "duration_s": value}])
    assert await videos.count_videos(db) == 0


@pytest.mark.parametrize("limit", [-1, 0, 2**70, 1.5, True])
async def test_claim_refuses_a_limit_that_is_not_a_positive_count(db: Database,
                                                                  limit: Any) -> None:
    await jobs.enqueue(db, "render")
    with pytest.raises(ValidationError):
        await jobs.claim(db, "w", limit=limit)
    assert await jobs.queue_counts(db) == {"pending": 1}


@pytest.mark.parametrize("limit", [-1, 0])
async def test_listing_refuses_a_limit_below_one(db: Database, limit: int) -> None:
    with pytest.raises(ValidationError):
        await videos.list_videos(db, limit=limit)


@pytest.mark.parametrize("key", [2**70, -(2**70), "1", 1.0, True])
async def test_a_key_no_backend_can_hold_is_a_validation_error(db: Database, key: Any) -> None:
    with pytest.raises(ValidationError):
        await videos.get_video(db, key)
    with pytest.raises(ValidationError):
        await videos.update_video(db, key, title="x")
    with pytest.raises(ValidationError):
        await videos.delete_video(db, key)
    with pytest.raises(ValidationError):
        await clips.list_clips(db, key)


@pytest.mark.parametrize("method", ["batch", "bulk"])
@pytest.mark.parametrize("bad", ["a\ud800b", "nul\x00here"])
async def test_lone_surrogates_and_nul_are_refused_everywhere(db: Database, method: str,
                                                             bad: str) -> None:
    with pytest.raises(ValidationError):
        await videos.insert_video(db, fresh_id(), title=bad)
    with pytest.raises(ValidationError):
        await videos.insert_videos(db, [{"youtube_id": fresh_id(), "title": "ok"},
                                        {"youtube_id": fresh_id(), "title": bad}],
                                   method=method)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await videos.insert_video(db, fresh_id(), metadata={"k": bad})
    with pytest.raises(ValidationError):
        await videos.list_videos(db, channel=bad)
    assert await videos.count_videos(db) == 0


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("metadata", [{1, 2}, {"tags": {"a"}}, {(1, 2): "x"}, b"bytes",
                                      {"n": math.nan}, [math.inf], {"views": 1e20},
                                      nested(10_000), nested(JSON_MAX_DEPTH + 1), "not json",
                                      "NaN", "[" * 10_000 + "]" * 10_000, {"k\x00": 1}])
async def test_json_that_cannot_be_stored_alike_is_refused(db: Database, metadata: Any) -> None:
    with pytest.raises(ValidationError):
        await videos.insert_video(db, fresh_id(), metadata=metadata)
    assert await videos.count_videos(db) == 0


async def test_json_is_stored_as_python_writes_it(db: Database) -> None:
    stored = await videos.insert_video(db, fresh_id(),
                                       metadata={"span": (1, 2), 7: "seven", "big": 2**70})
    assert (await videos.get_video(db, stored.id)).metadata == {
        "span": [1, 2], "7": "seven", "big": 2**70}


async def test_json_as_deep_as_every_backend_allows_round_trips(db: Database) -> None:
    deepest = nested(JSON_MAX_DEPTH)
    stored = await videos.insert_video(db, fresh_id(), metadata=deepest)
    assert (await videos.get_video(db, stored.id)).metadata == deepest


@pytest.mark.parametrize("youtube_ids", [None, "dQw4w9WgXcQ", 42, ["dQw4w9WgXcQ", None],
                                         [["dQw4w9WgXcQ"]]])
async def test_run_batch_refuses_what_is_not_a_list_of_ids(db: Database, youtube_ids: Any) -> None:
    with pytest.raises(ValidationError):
        await run_batch(db, None, youtube_ids)  # type: ignore[arg-type]
    assert await videos.count_videos(db) == 0


async def test_the_api_call_log_applies_the_same_rules(db: Database) -> None:
    with pytest.raises(ValidationError):
        await api_calls.record_api_call(db, "openai", "chat", "h" * 64, status=2**40,
                                        latency_s=0.1)
    with pytest.raises(ValidationError):
        await api_calls.record_api_call(db, "openai", "chat", "h" * 64, status=200,
                                        latency_s=math.nan)
    with pytest.raises(ValidationError):
        await api_calls.cached_response(db, "openai\x00", "chat", "h" * 64)
    with pytest.raises(ValidationError):
        await api_calls.list_api_calls(db, limit=-1)
    assert await api_calls.list_api_calls(db) == []


async def test_the_job_queue_refuses_what_no_backend_can_hold(db: Database) -> None:
    await jobs.enqueue(db, "render")
    with pytest.raises(ValidationError):
        await jobs.claim(db, "w", kinds="render")  # a string would be claimed as its letters
    with pytest.raises(ValidationError):
        await jobs.claim(db, "w", kinds=["ren\x00der"])
    with pytest.raises(ValidationError):
        await jobs.heartbeat(db, 2**70, "w")
    with pytest.raises(ValidationError):
        await jobs.job_events(db, 2**70)
    with pytest.raises(ValidationError):
        await jobs.enqueue(db, "render", delay_s=math.nan)
    assert await jobs.queue_counts(db) == {"pending": 1}


_ODD_VALUES = [None, True, 0, -1, 2**53, 2**53 + 1, 2**63, 1.5, -0.5, math.nan, math.inf, 1e300,
               "", "plain", "x" * 2001, "caf\u00e9", "nul\x00", "\ud800", "https://a.example/x",
               "https://a.example/x y", "AAAAAAAAAAA", "AAAAAAAAAA\n", [], {"a": [1, 2.5]},
               {"a": math.nan}, {"a": 1e17}, {"k": "\x00"}, {1: 2}, "[1, 2]", "{bad",
               [[[[]]]] * 2, {"a": {"b": "\ud83d\ude00"}}, {1, 2}, b"bytes"]


_VALID_ROWS: dict[str, dict[str, Any]] = {
    "videos": {"youtube_id": "AAAAAAAAAAA", "title": "t"},
    "clips": {"video_id": 1, "start_s": 0.0, "end_s": 1.0},
    "processing_jobs": {"kind": "k", "video_id": 1},
}


@pytest.mark.parametrize("table", [videos.VIDEOS, clips.CLIPS, jobs.JOBS],
                         ids=lambda table: table.name)
def test_one_row_and_a_batch_apply_the_same_rules(table: Any) -> None:
    """The single-row path checks common values inline before the full rules (it is on every
    insert_video): whatever it lets through or refuses, the batch path does too, alike."""
    valid = _VALID_ROWS[table.name]
    for column, value in itertools.product(table.spec, _ODD_VALUES):
        row = {**valid, column.name: value}
        assert _outcome(table.row, row) == _outcome(lambda r: table.rows([r])[0], row), (
            column.name, value)


def _outcome(check: Any, row: dict[str, Any]) -> Any:
    """The prepared tuple, or the refusal's class and message."""
    try:
        return tuple(check(row))
    except ValidationError as exc:
        return type(exc), str(exc)


def test_a_batch_of_valid_values_takes_the_one_pass_check() -> None:
    """A batch is checked by one regex pass over all its values, not value by value; a pattern
    with alternatives (the video URL: a web URL or a ``file://`` URI) must repeat as a whole."""
    url = videos.VIDEOS.by_name["url"]
    assert url._all_valid(["https://example.com/a", "file:///tmp/b.mp4", "https://x.org/"])
    assert not url._all_valid(["https://example.com/a", "ftp://example.com/b"])
