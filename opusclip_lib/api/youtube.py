"""YouTube Data API v3: ``videos.list`` and ``search.list``, with ETags and quota counting.

Quota: each call costs what Google's calculator says (``videos.list`` 1 unit, ``search.list``
100; the table is shared with the resilience layer's budget). A 304 answer to a conditional
request is counted at full price too: Google's quota page says every request, invalid ones
included, costs at least its method's units, and nothing documents an exception for 304s
(unconfirmed; we chose to over- rather than under-count). ``usage.cached`` counts the 304s.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar, Unpack

import httpx
from cachetools import LRUCache
from pydantic import BaseModel, SecretStr

from opusclip_lib.api._base import APIClient, ClientOptions, gather_or_raise
from opusclip_lib.api.errors import InvalidRequestError, InvalidVideoIdError
from opusclip_lib.api.models.youtube import (
    SearchListResponse,
    SearchResult,
    Video,
    VideoListResponse,
)
from opusclip_lib.resilience.fallback import Fallback
from opusclip_lib.resilience.quota import YOUTUBE_QUOTA_COSTS

M = TypeVar("M", bound=BaseModel)

VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
MAX_IDS_PER_CALL = 50
MAX_RESULTS_PER_PAGE = 50
VIDEO_PARTS = ("snippet", "contentDetails", "statistics")


def check_video_ids(ids: Iterable[str]) -> list[str]:
    """The ids, de-duplicated in order; :class:`InvalidVideoIdError` names every bad one."""
    unique = list(dict.fromkeys(ids))
    bad = [video_id for video_id in unique
           if not isinstance(video_id, str) or not VIDEO_ID.fullmatch(video_id)]
    if bad:
        raise InvalidVideoIdError(
            f"not YouTube video ids (11 characters of A-Z a-z 0-9 _ -): {bad[:5]!r}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""), provider="youtube")
    return unique


class YouTubeClient(APIClient):
    """``async with YouTubeClient() as yt: videos = await yt.videos(ids)``.

    Key from ``YOUTUBE_API_KEY``, sent as the ``key`` query parameter as Google documents.
    Timeouts: 5 s to connect, 10 s to read (a videos.list answers in well under a second), 30 s
    to wait for a pooled connection. Limits: 100 connections, all kept alive (the benchmark's
    concurrency; httpx's default of 20 keep-alive would reconnect 80 of them per burst), dropped
    after 4 s idle, under uvicorn's 5 s so we never reuse a socket the server is closing.
    ``etag_cache_size`` bounds the responses kept for conditional requests.
    """

    provider = "youtube"
    key_variable = "YOUTUBE_API_KEY"
    default_base_url = "https://www.googleapis.com/youtube/v3"
    default_timeout = httpx.Timeout(10.0, connect=5.0, pool=30.0)
    default_limits = httpx.Limits(max_connections=100, max_keepalive_connections=100,
                                  keepalive_expiry=4.0)
    cost_unit = "quota"

    def __init__(self, api_key: str | SecretStr | None = None, *, etag_cache_size: int = 1024,
                 **options: Unpack[ClientOptions]) -> None:
        super().__init__(api_key, **options)
        self._etags: LRUCache[str, tuple[str, BaseModel]] = LRUCache(etag_cache_size)

    @property
    def quota_used(self) -> int:
        """Units this client spent (every answered call, 304s and errors included)."""
        return int(self.usage.cost)

    def _auth_params(self, secret: str) -> dict[str, str]:
        return {"key": secret}

    def _spend(self, operation: str, response: httpx.Response, result: object) -> dict[str, float]:
        return {"quota": YOUTUBE_QUOTA_COSTS[operation]}

    async def _get(self, operation: str, path: str, params: dict[str, str | int],
                   model: type[M]) -> M | Fallback[M]:
        """A conditional GET: resend the last ETag; a 304 returns the response we kept."""
        remembered_as = f"{path}?{sorted(params.items())}"

        async def attempt() -> M:
            kept = self._etags.get(remembered_as)
            headers = {"Accept": "application/json"}
            if kept is not None:
                headers["If-None-Match"] = kept[0]

            def parse(response: httpx.Response) -> M:
                if response.status_code == 304:
                    if kept is None or not isinstance(kept[1], model):
                        raise self._malformed(response, "304 Not Modified for a request we "
                                                        "never made conditional")
                    return kept[1]
                result = self._parse_model(response, model)
                etag = response.headers.get("etag") or f'"{getattr(result, "etag", "")}"'
                self._etags[remembered_as] = (etag, result)
                return result

            request = self._request("GET", path, params=params, headers=headers)
            return await self._exchange(operation, request, parse)

        return await self._call(attempt, cache_key=self._cache_key("GET", path, params),
                                cost=YOUTUBE_QUOTA_COSTS[operation])

    async def videos(self, ids: Iterable[str], *,
                     parts: Sequence[str] = VIDEO_PARTS) -> list[Video] | Fallback[list[Video]]:
        """``videos.list`` for any number of ids: 50 per call, the calls made concurrently.

        Videos come back in the order of ``ids`` (duplicates dropped); unknown ids are simply
        absent (YouTube answers 200 with no item). If a chunk comes from a fallback, the whole
        list is returned as a :class:`Fallback`.
        """
        unique = check_video_ids(ids)
        chunks = [unique[i:i + MAX_IDS_PER_CALL] for i in range(0, len(unique), MAX_IDS_PER_CALL)]
        pages = await gather_or_raise([self.videos_page(chunk, parts=parts) for chunk in chunks])
        position = {video_id: index for index, video_id in enumerate(unique)}
        items = sorted((video for page in pages
                        for video in (page.value if isinstance(page, Fallback) else page).items),
                       key=lambda video: position.get(video.id, len(position)))
        stale = next((page for page in pages if isinstance(page, Fallback)), None)
        return items if stale is None else Fallback(items, stale.reason, stale.source)

    async def videos_page(self, ids: Sequence[str], *, parts: Sequence[str] = VIDEO_PARTS,
                          ) -> VideoListResponse | Fallback[VideoListResponse]:
        """One ``videos.list`` call (at most 50 ids): the whole response, etag included."""
        checked = check_video_ids(ids)
        if len(checked) > MAX_IDS_PER_CALL:
            raise InvalidRequestError(f"videos.list takes at most {MAX_IDS_PER_CALL} ids a call,"
                                      f" got {len(checked)}; use videos()", provider=self.provider)
        params: dict[str, str | int] = {"part": ",".join(parts), "id": ",".join(checked)}
        return await self._get("videos.list", "/videos", params, VideoListResponse)

    async def search(self, query: str, *, max_results: int = 25, page_token: str | None = None,
                     type: str = "video", **filters: str | int,
                     ) -> SearchListResponse | Fallback[SearchListResponse]:
        """One ``search.list`` page (100 quota units). ``filters`` are passed through as given
        (``order="viewCount"``, ``regionCode="GB"``, ``videoDuration="long"``, ...)."""
        if not 0 <= max_results <= MAX_RESULTS_PER_PAGE:
            raise InvalidRequestError("search.list takes maxResults from 0 to 50",
                                      provider=self.provider)
        params: dict[str, str | int] = {"part": "snippet", "q": query, "type": type,
                                        "maxResults": max_results, **filters}
        if page_token:
            params["pageToken"] = page_token
        return await self._get("search.list", "/search", params, SearchListResponse)

    async def search_pages(self, query: str, *, max_pages: int | None = None, **options: Any,
                           ) -> AsyncGenerator[SearchListResponse | Fallback[SearchListResponse]]:
        """Pages of :meth:`search`, following ``nextPageToken``; each page costs 100 units, so
        ``max_pages`` is worth setting. Use ``contextlib.aclosing`` if you may stop early."""
        token: str | None = None
        pages = 0
        while max_pages is None or pages < max_pages:
            page = await self.search(query, page_token=token, **options)
            pages += 1
            yield page
            token = (page.value if isinstance(page, Fallback) else page).next_page_token
            if not token:
                return

    async def search_items(self, query: str, *, limit: int | None = None,
                           **options: Any) -> AsyncIterator[SearchResult]:
        """Search results one by one across pages, stopping after ``limit`` items."""
        if limit is not None and limit <= 0:
            return
        seen = 0
        async with aclosing(self.search_pages(query, **options)) as pages:
            async for page in pages:
                for item in (page.value if isinstance(page, Fallback) else page).items:
                    yield item
                    seen += 1
                    if seen == limit:
                        return  # before asking for a page nobody will read (100 units)

