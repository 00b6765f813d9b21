"""RedisCache and pydantic results: models come back as equal instances of their own class, and
only opusclip_lib's models are ever rebuilt from what Redis holds."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from opusclip_lib.api.models.elevenlabs import SpeechAudio, SpeechWithTimestamps
from opusclip_lib.api.models.openai import Highlight, HighlightPicks
from opusclip_lib.api.models.stability import GeneratedImage
from opusclip_lib.api.models.youtube import SearchListResponse, VideoListResponse
from opusclip_lib.resilience import MISS, RedisCache

pytestmark = pytest.mark.redis

VIDEOS = VideoListResponse.model_validate({  # as YouTube sends it: camelCase, numbers as strings
    "etag": "page-etag",
    "items": [{
        "etag": "video-etag", "id": "abc123",
        "snippet": {"publishedAt": "2024-05-01T12:00:00Z", "channelId": "UC1", "title": "Clip",
                    "thumbnails": {"default": {"url": "https://i.ytimg.com/a.jpg", "width": 120}},
                    "tags": ["async"]},
        "contentDetails": {"duration": "PT4M13S", "caption": "true"},
        "statistics": {"viewCount": "1234", "likeCount": "56"},
    }],
    "pageInfo": {"totalResults": 1, "resultsPerPage": 5},
})
PICKS = HighlightPicks(highlights=[
    Highlight(start=12.5, end=41.25, title="The twist", hook="Nobody saw it coming",
              virality_score=87.5),
])

NOT_UTF8 = b"\x89PNG\r\n\x1a\n\xff\xfe\x00"  # media bytes are not text
MEDIA = [
    GeneratedImage(image=NOT_UTF8, media_type="image/png", finish_reason="SUCCESS", seed=7),
    SpeechAudio(audio=NOT_UTF8, media_type="audio/mpeg", character_cost=12),
    SpeechWithTimestamps.model_validate({"audio_base64": "iVBORw0KGgr/"}),
]


class NotOurs(BaseModel):
    name: str


@pytest.mark.parametrize("value", [
    VIDEOS, PICKS, PICKS.highlights, *MEDIA, b"\x89PNG\r\n\x00",
    {"items": [{"id": "abc"}], "total": 1},
], ids=["youtube-model", "openai-structured", "list-of-models", "stability-image",
        "elevenlabs-audio", "elevenlabs-timestamps", "bytes", "json"])
async def test_round_trip_gives_back_an_equal_value_of_the_same_type(
        redis: tuple[Redis, str], value: Any) -> None:
    client, prefix = redis
    cache = RedisCache(client, prefix=prefix, ttl_s=300, stale_ttl_s=3600)
    await cache.set("k", value)
    for stored in (await cache.get("k"), await cache.get_stale("k")):
        assert stored == value
        assert type(stored) is type(value)
        if isinstance(value, list):
            assert [type(item) for item in stored] == [type(item) for item in value]


@pytest.mark.parametrize("path", [
    "os:system",                                 # not a class, not ours
    "pydantic:BaseModel",                        # a model, not ours
    "opusclip_lib.api.models._base:BaseModel",   # ours by name only: pydantic's, re-exported
    "opusclip_lib.api.models.youtube:VideoListResponse.__init__",  # ours, not a class
])
async def test_forged_class_path_is_a_miss_not_an_import(
        redis: tuple[Redis, str], path: str, caplog: pytest.LogCaptureFixture) -> None:
    client, prefix = redis
    cache = RedisCache(client, prefix=prefix)
    await client.set(cache.data_key("k"), b"m" + path.encode() + b"\n{}")
    with caplog.at_level(logging.WARNING, logger="opusclip_lib.resilience.cache"):
        assert await cache.get("k") is MISS
    assert "refusing to rebuild" in caplog.text


@pytest.mark.parametrize("value", [
    NotOurs(name="x"),  # a reader would refuse its class
    SearchListResponse.model_validate({"etag": "e", "items": [{  # unescaped on every read
        "etag": "r", "id": {"kind": "youtube#video", "videoId": "abc123"},
        "snippet": {"title": "Tom &amp;amp; Jerry", "publishedAt": "2024-05-01T12:00:00Z",
                    "channelId": "UC1"}}]}),
], ids=["foreign-model", "not-read-back-equal"])
async def test_model_that_cannot_come_back_is_not_stored(
        redis: tuple[Redis, str], value: BaseModel, caplog: pytest.LogCaptureFixture) -> None:
    client, prefix = redis
    cache = RedisCache(client, prefix=prefix)
    with caplog.at_level(logging.WARNING, logger="opusclip_lib.resilience.cache"):
        await cache.set("k", value)
    assert "cache store skipped" in caplog.text
    assert await client.exists(cache.data_key("k")) == 0
