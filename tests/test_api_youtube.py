"""YouTube client: id checks, chunking, ETags, quota, paging; then the sandbox end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import aclosing
from datetime import timedelta
from typing import Any

import httpx
import pytest

from opusclip_lib.api import (
    AuthenticationError,
    InvalidRequestError,
    InvalidVideoIdError,
    QuotaExceededError,
    YouTubeClient,
)
from opusclip_lib.config import data_dir
from opusclip_lib.metrics import Recorder
from opusclip_lib.sandbox import SandboxConfig, build_app

KEY = "AIzaSyTESTKEY000000000000000000000000"


def video(video_id: str) -> dict[str, Any]:
    return {
        "kind": "youtube#video", "etag": f"etag-{video_id}", "id": video_id,
        "snippet": {"publishedAt": "2024-05-01T12:00:00Z", "channelId": "UC123",
                    "title": "Async &amp; you", "channelTitle": "Channel"},
        "contentDetails": {"duration": "PT13M", "caption": "false", "licensedContent": True},
        "statistics": {"viewCount": "1234", "likeCount": "56", "commentCount": "7"},
    }


def ids(count: int) -> list[str]:
    return [f"vid{n:08d}" for n in range(count)]


class FakeYouTube:
    """videos.list and search.list over MockTransport, recording each request."""

    def __init__(self, pages: int = 3, per_page: int = 2) -> None:
        self.requests: list[httpx.Request] = []
        self.pages = pages
        self.per_page = per_page

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = request.url.params
        assert params["key"] == KEY
        if request.url.path.endswith("/videos"):
            etag = '"list-etag"'
            if request.headers.get("if-none-match") == etag:
                return httpx.Response(304, headers={"etag": etag})
            items = [video(i) for i in reversed(params["id"].split(","))]  # any order
            return httpx.Response(200, headers={"etag": etag}, json={
                "kind": "youtube#videoListResponse", "etag": "list-etag", "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})
        page = int(params.get("pageToken", "0"))
        body: dict[str, Any] = {
            "kind": "youtube#searchListResponse", "etag": f"search-{page}", "regionCode": "GB",
            "pageInfo": {"totalResults": self.pages * self.per_page,
                         "resultsPerPage": self.per_page},
            "items": [{"kind": "youtube#searchResult", "etag": f"r{page}{n}",
                       "id": {"kind": "youtube#video", "videoId": f"p{page}n{n}xxxxx"},
                       "snippet": {"publishedAt": "2024-05-01T12:00:00Z", "channelId": "UC1",
                                   "title": "Don&#39;t block the loop", "description": "",
                                   "channelTitle": "c"}}
                      for n in range(self.per_page)]}
        if page + 1 < self.pages:
            body["nextPageToken"] = str(page + 1)
        return httpx.Response(200, json=body)


def client(fake: Callable[[httpx.Request], httpx.Response], **options: Any) -> YouTubeClient:
    return YouTubeClient(KEY, transport=httpx.MockTransport(fake), **options)


@pytest.mark.parametrize("bad", ["short", "has space!!", "dQw4w9WgXcQQ", "", "dQw4w9WgXc/"])
async def test_bad_ids_are_refused_before_any_request(bad: str) -> None:
    fake = FakeYouTube()
    async with client(fake) as yt:
        with pytest.raises(InvalidVideoIdError, match="11 characters") as caught:
            await yt.videos(["dQw4w9WgXcQ", bad])
    assert fake.requests == []
    assert isinstance(caught.value, ValueError)
    assert not caught.value.retryable


async def test_more_than_50_ids_are_chunked_and_deduplicated() -> None:
    fake = FakeYouTube()
    wanted = ids(120)
    recorder = Recorder()
    async with client(fake, recorder=recorder) as yt:
        videos = await yt.videos(wanted + wanted[:10])
    sent = sorted((r.url.params["id"].split(",") for r in fake.requests), key=len, reverse=True)
    assert [len(chunk) for chunk in sent] == [50, 50, 20]
    assert sorted(i for chunk in sent for i in chunk) == wanted
    assert [v.id for v in videos] == wanted  # the caller's order, duplicates dropped
    assert all(r.url.params["part"] == "snippet,contentDetails,statistics" for r in fake.requests)
    assert yt.quota_used == 3
    assert len(recorder.events("http")) == 3


async def test_one_page_takes_at_most_50_ids() -> None:
    async with client(FakeYouTube()) as yt:
        with pytest.raises(InvalidRequestError, match="at most 50"):
            await yt.videos_page(ids(51))


async def test_models_turn_youtube_strings_into_python_types() -> None:
    async with client(FakeYouTube()) as yt:
        [found] = await yt.videos(["dQw4w9WgXcQ"])
    assert found.statistics is not None
    assert found.statistics.view_count == 1234
    assert found.content_details is not None
    assert found.content_details.duration == timedelta(minutes=13)
    assert found.content_details.caption is False
    assert found.snippet is not None
    assert found.snippet.channel_id == "UC123"


async def test_etag_304_returns_the_kept_body_and_still_costs_quota() -> None:
    fake = FakeYouTube()
    recorder = Recorder()
    async with client(fake, recorder=recorder) as yt:
        first = await yt.videos_page(["dQw4w9WgXcQ"])
        second = await yt.videos_page(["dQw4w9WgXcQ"])
    assert "if-none-match" not in fake.requests[0].headers
    assert fake.requests[1].headers["if-none-match"] == '"list-etag"'
    assert second is first
    assert (yt.usage.calls, yt.usage.cached, yt.quota_used) == (2, 1, 2)
    assert [e.labels["cached"] for e in recorder.events("http")] == [False, True]
    assert [e.labels["status"] for e in recorder.events("http")] == [200, 304]


async def test_search_pages_follow_next_page_token_and_unescape_titles() -> None:
    fake = FakeYouTube(pages=3)
    async with client(fake) as yt, aclosing(yt.search_pages("asyncio")) as pages:
        tokens = [page.next_page_token async for page in pages]  # type: ignore[union-attr]
    assert tokens == ["1", "2", None]
    assert [r.url.params.get("pageToken") for r in fake.requests] == [None, "1", "2"]
    assert yt.quota_used == 300
    sent = fake.requests[0].url.params
    assert (sent["q"], sent["type"], sent["maxResults"]) == ("asyncio", "video", "25")


async def test_search_titles_arrive_unescaped() -> None:
    async with client(FakeYouTube()) as yt:
        page = await yt.search("asyncio")
    titles = [item.snippet.title for item in page.items if item.snippet]  # type: ignore[union-attr]
    assert titles == ["Don't block the loop"] * 2


async def test_search_items_stop_at_the_limit_without_buying_another_page() -> None:
    fake = FakeYouTube(pages=5, per_page=2)
    async with client(fake) as yt:
        found = [item.id.video_id async for item in yt.search_items("asyncio", limit=4)]
    assert len(found) == 4
    assert len(fake.requests) == 2  # a third page (100 units) was never requested


async def test_search_pages_respect_max_pages() -> None:
    fake = FakeYouTube(pages=5)
    async with client(fake) as yt:
        pages = [page async for page in yt.search_pages("asyncio", max_pages=2)]
    assert len(pages) == 2
    assert len(fake.requests) == 2


# --- against the sandbox ----------------------------------------------------------------------


def catalogue_ids() -> list[str]:
    return [v["id"] for v in json.loads((data_dir() / "catalogue.json").read_text())["videos"]]


def sandbox_client(config: SandboxConfig | None = None, key: str = "sandbox-key",
                   **options: Any) -> YouTubeClient:
    return YouTubeClient(key, transport=httpx.ASGITransport(build_app(config)), **options)


async def test_sandbox_videos_search_etag_and_quota() -> None:
    known = catalogue_ids()
    async with sandbox_client() as yt:
        videos = await yt.videos([*known, "AAAAAAAAAAA"])  # the unknown id is simply absent
        assert sorted(v.id for v in videos) == sorted(known)
        assert all(v.snippet and v.content_details and v.statistics for v in videos)
        again = await yt.videos(known[:5])
        repeat = await yt.videos(known[:5])
        assert [v.id for v in repeat] == [v.id for v in again]
        assert yt.usage.cached == 1
        found = [item async for item in yt.search_items("python", limit=7, max_results=5)]
        assert len(found) == 7
        assert all(item.id.video_id in known for item in found)
    assert yt.quota_used == 1 + 1 + 1 + 2 * 100


async def test_sandbox_rejects_bad_key_and_spent_quota() -> None:
    async with sandbox_client(key="invalid-key") as yt:
        with pytest.raises(AuthenticationError) as caught:
            await yt.videos(["dQw4w9WgXcQ"])
    assert caught.value.code == "API_KEY_INVALID"
    config = SandboxConfig()
    config.youtube.daily_quota = 150
    async with sandbox_client(config) as yt:
        await yt.search("python")
        with pytest.raises(QuotaExceededError) as spent:
            await yt.search("asyncio")
    assert spent.value.code == "quotaExceeded"
    assert not spent.value.retryable
