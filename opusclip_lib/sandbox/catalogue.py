"""The sample videos behind the fake YouTube: loaded once, searched in memory."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

ISO_DURATION = re.compile(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?")
WORD = re.compile(r"[a-z0-9+#']+")


def duration_seconds(iso: str) -> int:
    """Seconds in an ISO 8601 duration as YouTube writes them (``PT4M13S``, ``P1DT2H``)."""
    match = ISO_DURATION.fullmatch(iso)  # not match() with "$": "PT4M\n" is no duration
    if not match or iso in {"P", "PT"}:
        raise ValueError(f"not an ISO 8601 duration: {iso!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class CatalogueVideo(BaseModel):
    """One entry of ``opusclip_lib/data/catalogue.json``; counts are numbers here, strings in API
    responses."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{11}$")
    title: str
    description: str
    channelId: str = Field(pattern=r"^UC[A-Za-z0-9_-]{22}$")
    channelTitle: str
    publishedAt: str
    duration: str
    categoryId: str
    tags: list[str]
    defaultAudioLanguage: str = "en"
    definition: Literal["hd", "sd"] = "hd"
    caption: bool
    licensedContent: bool
    viewCount: int = Field(ge=0)
    likeCount: int = Field(ge=0)
    commentCount: int = Field(ge=0)

    @field_validator("duration")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    @field_validator("publishedAt")
    @classmethod
    def _utc_timestamp(cls, value: str) -> str:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        return value

    @cached_property
    def seconds(self) -> int:
        return duration_seconds(self.duration)

    @cached_property
    def words(self) -> frozenset[str]:
        text = " ".join([self.title, self.description, self.channelTitle, *self.tags])
        return frozenset(WORD.findall(text.lower()))


class Catalogue(BaseModel):
    videos: list[CatalogueVideo]

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        catalogue = cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        ids = [video.id for video in catalogue.videos]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{path}: duplicate video ids")
        return catalogue

    @cached_property
    def by_id(self) -> dict[str, CatalogueVideo]:
        return {video.id: video for video in self.videos}

    def search(self, query: str, *, order: str = "relevance", channel_id: str | None = None,
               duration: str | None = None) -> list[CatalogueVideo]:
        """Every video, best match first, like YouTube (which never answers a search with nothing).

        Relevance counts query words found in the title (x3), tags (x2) and elsewhere; ties and
        non-matches follow view count. ``duration`` is search.list's short (<4 min), medium or long.
        """
        terms = WORD.findall(query.lower())
        videos = [v for v in self.videos if (channel_id is None or v.channelId == channel_id)
                  and _duration_bucket_matches(v.seconds, duration)]
        if order == "date":
            return sorted(videos, key=lambda v: v.publishedAt, reverse=True)
        if order == "viewCount":
            return sorted(videos, key=lambda v: v.viewCount, reverse=True)
        if order == "title":
            return sorted(videos, key=lambda v: v.title.lower())
        if order == "rating":
            return sorted(videos, key=lambda v: v.likeCount / max(v.viewCount, 1), reverse=True)
        return sorted(videos, key=lambda v: (_relevance(v, terms), v.viewCount), reverse=True)


def _relevance(video: CatalogueVideo, terms: list[str]) -> int:
    title = set(WORD.findall(video.title.lower()))
    tags = set(WORD.findall(" ".join(video.tags).lower()))
    return sum(3 * (t in title) + 2 * (t in tags) + (t in video.words) for t in terms)


def _duration_bucket_matches(seconds: int, bucket: str | None) -> bool:
    if bucket == "short":
        return seconds < 240
    if bucket == "medium":
        return 240 <= seconds <= 1200
    if bucket == "long":
        return seconds > 1200
    return True
