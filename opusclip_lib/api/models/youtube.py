"""YouTube Data API v3 resources, as the discovery document describes them.

YouTube sends numbers as strings (``"viewCount": "1234"``), booleans as strings in places
(``"caption": "true"``) and durations in ISO 8601 (``"PT4M13S"``); pydantic's lax mode turns them
into ``int``, ``bool`` and ``timedelta``. Search snippets come HTML-escaped (``&#39;``) and are
unescaped here, once, so nobody prints ``Don&#39;t`` on a thumbnail.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta

from pydantic import Field, field_validator

from opusclip_lib.api.models._base import CamelModel


class Thumbnail(CamelModel):
    url: str
    width: int | None = None
    height: int | None = None


class Snippet(CamelModel):
    """The fields ``videos.list`` and ``search.list`` snippets share."""

    published_at: datetime
    channel_id: str
    title: str
    description: str = ""
    thumbnails: dict[str, Thumbnail] = Field(default_factory=dict)
    channel_title: str = ""
    live_broadcast_content: str | None = None


class VideoSnippet(Snippet):
    tags: list[str] = Field(default_factory=list)
    category_id: str | None = None
    default_language: str | None = None
    default_audio_language: str | None = None


class ContentDetails(CamelModel):
    duration: timedelta
    dimension: str | None = None
    definition: str | None = None
    caption: bool | None = None
    licensed_content: bool | None = None
    projection: str | None = None


class VideoStatistics(CamelModel):
    view_count: int | None = None
    like_count: int | None = None
    favorite_count: int | None = None
    comment_count: int | None = None


class Video(CamelModel):
    kind: str = "youtube#video"
    etag: str
    id: str
    snippet: VideoSnippet | None = None
    content_details: ContentDetails | None = None
    statistics: VideoStatistics | None = None


class PageInfo(CamelModel):
    total_results: int
    results_per_page: int


class VideoListResponse(CamelModel):
    kind: str = "youtube#videoListResponse"
    etag: str
    items: list[Video] = Field(default_factory=list)
    page_info: PageInfo | None = None
    next_page_token: str | None = None


class SearchResultId(CamelModel):
    kind: str
    video_id: str | None = None
    channel_id: str | None = None
    playlist_id: str | None = None


class SearchSnippet(Snippet):
    @field_validator("title", "description", "channel_title")
    @classmethod
    def _unescape(cls, value: str) -> str:
        return html.unescape(value)


class SearchResult(CamelModel):
    kind: str = "youtube#searchResult"
    etag: str
    id: SearchResultId
    snippet: SearchSnippet | None = None


class SearchListResponse(CamelModel):
    kind: str = "youtube#searchListResponse"
    etag: str
    next_page_token: str | None = None
    prev_page_token: str | None = None
    region_code: str | None = None
    page_info: PageInfo | None = None
    items: list[SearchResult] = Field(default_factory=list)
