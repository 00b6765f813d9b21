"""Fake YouTube Data API v3: ``videos.list`` and ``search.list`` over the sample catalogue.

``videos.list`` is the benchmark's hot path: items are serialised once per combination of parts,
and a whole answer (validation outcome, body, etag) is a pure function of the query string, so it
is cached by it; per request only the quota charge, the latency and the If-None-Match check run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from opusclip_lib.sandbox.catalogue import Catalogue, CatalogueVideo
from opusclip_lib.sandbox.config import Fault, SandboxConfig
from opusclip_lib.sandbox.limits import DailyQuota
from opusclip_lib.sandbox.pipeline import retry_after, route, work
from opusclip_lib.sandbox.youtube_fields import FieldsError, parse_fields, select

JSON = "application/json; charset=UTF-8"
MAX_IDS = 50
VIDEO_PARTS = ("snippet", "contentDetails", "status", "statistics", "player")
"""Parts the sandbox fills, in the order YouTube writes them."""
OWNER_ONLY_PARTS = frozenset({
    "fileDetails", "processingDetails", "suggestions", "liveStreamingDetails", "localizations",
    "recordingDetails", "topicDetails", "paidProductPlacementDetails",
})
"""Valid parts the sandbox leaves out (YouTube omits most of them for videos you don't own)."""
SEARCH_PARTS = frozenset({"id", "snippet"})
KEY_INVALID = "API key not valid. Please pass a valid API key."
KEY_MISSING = ("Method doesn't allow unregistered callers (callers without established identity)."
               " Please use API Key or other form of API consumer identity to call this API.")
QUOTA_EXCEEDED = ("The request cannot be completed because you have exceeded your "
                  '<a href="/youtube/v3/getting-started#quota">quota</a>.')
THUMBNAILS = {"default": (120, 90), "medium": (320, 180), "high": (480, 360),
              "standard": (640, 480), "maxres": (1280, 720)}
FAULT_ERRORS = {
    429: ("Resource has been exhausted (e.g. check quota).", "rateLimitExceeded",
          "RESOURCE_EXHAUSTED"),
    500: ("Internal error encountered.", "backendError", "INTERNAL"),
    503: ("The service is currently unavailable.", "backendError", "UNAVAILABLE"),
    504: ("The request timed out.", "backendError", "DEADLINE_EXCEEDED"),
}


class GoogleError(Exception):
    """A Google-style error body: ``{"error": {code, message, errors[], status?, details?}}``."""

    def __init__(self, code: int, message: str, reason: str, *, domain: str = "global",
                 status: str | None = None, location: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        entry: dict[str, Any] = {"message": message, "domain": domain, "reason": reason}
        if location:
            entry.update(location=location, locationType="parameter")
        error: dict[str, Any] = {"code": code, "message": message, "errors": [entry]}
        if status:
            error["status"] = status
        if details:
            error["details"] = details
        self.code = code
        self.body = {"error": error}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(self.body), self.code, headers=headers, media_type=JSON)


def etag_of(*chunks: bytes) -> str:
    """A 27-character etag like YouTube's, from the content it labels."""
    digest = hashlib.blake2b(b"\0".join(chunks), digest_size=20).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def page_token(offset: int, *, backwards: bool = False) -> str:
    """YouTube's format: base64 of protobuf fields 1 (offset) and 2 (direction), as ``CAUQAA``."""
    raw = bytearray(b"\x08")
    while True:
        byte, offset = offset & 0x7F, offset >> 7
        raw.append(byte | (0x80 if offset else 0))
        if not offset:
            break
    raw += b"\x10\x01" if backwards else b"\x10\x00"
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def page_offset(token: str) -> int:
    """The offset in a token from :func:`page_token`; ValueError when it is not one."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    if len(raw) < 4 or raw[0] != 0x08 or raw[-2] != 0x10 or raw[-1] > 1:
        raise ValueError(token)
    offset = 0
    for shift, byte in enumerate(raw[1:-2]):
        offset |= (byte & 0x7F) << (7 * shift)
    if page_token(offset, backwards=bool(raw[-1])) != token.rstrip("="):
        raise ValueError(token)
    return offset


def _escape(text: str) -> str:
    """HTML-escape as YouTube does in search snippets (``&#39;`` for the apostrophe)."""
    return html.escape(text).replace("&#x27;", "&#39;")


def _thumbnails(video_id: str, sizes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {name: {"url": f"https://i.ytimg.com/vi/{video_id}/{name}.jpg",
                   "width": THUMBNAILS[name][0], "height": THUMBNAILS[name][1]} for name in sizes}


def _video_parts(v: CatalogueVideo) -> dict[str, dict[str, Any]]:
    return {
        "snippet": {
            "publishedAt": v.publishedAt, "channelId": v.channelId, "title": v.title,
            "description": v.description, "thumbnails": _thumbnails(v.id, tuple(THUMBNAILS)),
            "channelTitle": v.channelTitle, "tags": v.tags, "categoryId": v.categoryId,
            "liveBroadcastContent": "none", "defaultAudioLanguage": v.defaultAudioLanguage,
            "localized": {"title": v.title, "description": v.description},
        },
        "contentDetails": {
            "duration": v.duration, "dimension": "2d", "definition": v.definition,
            "caption": "true" if v.caption else "false", "licensedContent": v.licensedContent,
            "contentRating": {}, "projection": "rectangular",
        },
        "status": {
            "uploadStatus": "processed", "privacyStatus": "public", "license": "youtube",
            "embeddable": True, "publicStatsViewable": True, "madeForKids": False,
        },
        "statistics": {
            "viewCount": str(v.viewCount), "likeCount": str(v.likeCount),
            "favoriteCount": "0", "commentCount": str(v.commentCount),
        },
        "player": {
            "embedHtml": f'<iframe width="480" height="270" src="//www.youtube.com/embed/{v.id}"'
                         ' frameborder="0" allow="accelerometer; autoplay; clipboard-write;'
                         ' encrypted-media; gyroscope; picture-in-picture; web-share"'
                         ' referrerpolicy="strict-origin-when-cross-origin" allowfullscreen>'
                         "</iframe>",
        },
    }


def _search_snippet(v: CatalogueVideo) -> dict[str, Any]:
    description = v.description if len(v.description) <= 160 else v.description[:157] + "..."
    return {
        "publishedAt": v.publishedAt, "channelId": v.channelId, "title": _escape(v.title),
        "description": _escape(description),
        "thumbnails": _thumbnails(v.id, ("default", "medium", "high")),
        "channelTitle": _escape(v.channelTitle), "liveBroadcastContent": "none",
        "publishTime": v.publishedAt,
    }


def _serialise(kind: str, item_id: Any, parts: dict[str, Any]) -> tuple[str, bytes]:
    content = json.dumps([item_id, parts], ensure_ascii=False).encode()
    etag = etag_of(kind.encode(), content)
    item = {"kind": kind, "etag": etag, "id": item_id, **parts}
    return etag, json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def _if_none_match(headers: list[tuple[bytes, bytes]]) -> set[str]:
    """Etags in If-None-Match (read from the raw ASGI headers: this runs on the hot path)."""
    for name, value in headers:
        if name == b"if-none-match":
            return {tag.strip().removeprefix("W/").strip('"') for tag in value.decode().split(",")}
    return set()


def _joined(params: QueryParams, name: str) -> str | None:
    """A list parameter sent repeated (``part=a&part=b``, as Google's clients send
    ``"repeated": true`` parameters) or comma-separated (``part=a,b``): one comma list."""
    values = params.getlist(name)
    return ",".join(values) if values else None


def _partial(params: QueryParams, answer: Answer | GoogleError) -> Answer | GoogleError:
    """The answer cut down to the ``fields`` selection, if the request has one."""
    fields = params.get("fields")
    if not fields or isinstance(answer, GoogleError):
        return answer
    try:
        tree = parse_fields(fields)
    except FieldsError as exc:
        return GoogleError(400, str(exc), "invalidParameter", location="fields",
                           status="INVALID_ARGUMENT")
    chosen = select(json.loads(answer.body), tree)
    return Answer(answer.key, answer.etag, json.dumps(chosen, ensure_ascii=False).encode())


@dataclass(frozen=True, slots=True)
class Answer:
    """Everything a list call returns that depends only on its query string (hence cached)."""

    key: str
    etag: str
    body: bytes


class YouTubeAPI:
    """Routes relative to ``https://www.googleapis.com/youtube/v3``."""

    hosts = ("www.googleapis.com", "youtube.googleapis.com")
    base_path = "/youtube/v3"
    local_prefix = "/youtube/v3"

    def __init__(self, config: SandboxConfig, catalogue: Catalogue) -> None:
        self.config = config
        self.quota = DailyQuota()
        self._load(catalogue)
        self.routes = [
            route(self, "/videos", "youtube.videos.list", self.videos_list, ["GET"]),
            route(self, "/search", "youtube.search.list", self.search_list, ["GET"]),
        ]

    def _load(self, catalogue: Catalogue) -> None:
        """Derive the serialised items and fresh answer caches from ``catalogue``."""
        self._parts = {v.id: _video_parts(v) for v in catalogue.videos}
        self._items: dict[tuple[str, tuple[str, ...]], tuple[str, bytes]] = {}
        for video_id in self._parts:
            self._item(video_id, ("snippet", "contentDetails", "statistics"))
        self._search_items = {
            (v.id, parts): _serialise("youtube#searchResult",
                                      {"kind": "youtube#video", "videoId": v.id},
                                      {"snippet": _search_snippet(v)} if parts == "snippet" else {})
            for v in catalogue.videos for parts in ("id", "snippet")
        }
        self.catalogue = catalogue
        self._videos_answer = lru_cache(maxsize=4096)(self._videos)
        self._search_answer = lru_cache(maxsize=1024)(self._search)

    # --- upstream changes while the sandbox runs (what a sync must notice) ------------------

    def update_video(self, video_id: str, **changes: Any) -> CatalogueVideo:
        """Change a video upstream (``viewCount=...``, ``title=...``): later answers carry the
        new data and a new etag, as YouTube's would."""
        unknown = changes.keys() - CatalogueVideo.model_fields.keys()
        if unknown:
            raise ValueError(f"catalogue videos have no field(s) {sorted(unknown)}")
        video = CatalogueVideo.model_validate(
            {**self.catalogue.by_id[video_id].model_dump(), **changes, "id": video_id})
        self._load(Catalogue(videos=[video if v.id == video_id else v
                                     for v in self.catalogue.videos]))
        return video

    def delete_video(self, video_id: str) -> CatalogueVideo:
        """Take a video down upstream: ``videos.list`` then omits it, as for a deleted video."""
        removed = self.catalogue.by_id[video_id]
        self._load(Catalogue(videos=[v for v in self.catalogue.videos if v.id != video_id]))
        return removed

    def add_video(self, video: CatalogueVideo) -> None:
        """Publish a video upstream (a new one, or one :meth:`delete_video` took down)."""
        if video.id in self._parts:
            raise ValueError(f"video {video.id} is already in the catalogue")
        self._load(Catalogue(videos=[*self.catalogue.videos, video]))

    def fault_response(self, fault: Fault, status: int) -> Response:
        message, reason, status_text = FAULT_ERRORS[status]
        headers = retry_after(fault.retry_after_s) if status == 429 else None
        return GoogleError(status, message, reason, status=status_text).response(headers)

    def reset(self) -> None:
        self.quota.reset()

    async def videos_list(self, request: Request) -> Response:
        return await self._respond(request, "youtube.videos.list", self._videos_answer,
                                   self.config.youtube.videos_list_cost)

    async def search_list(self, request: Request) -> Response:
        return await self._respond(request, "youtube.search.list", self._search_answer,
                                   self.config.youtube.search_list_cost)

    async def _respond(self, request: Request, endpoint: str,
                       answer_for: Callable[[bytes], Answer | GoogleError], cost: int) -> Response:
        """Charge the key, simulate the work, and send the (cached) answer or a 304."""
        answer = answer_for(request.scope["query_string"])
        if isinstance(answer, GoogleError):
            return answer.response()
        try:
            self._charge(answer.key, cost)
        except GoogleError as error:
            return error.response()
        await work(self.config, endpoint)
        headers = {"etag": f'"{answer.etag}"'}
        if answer.etag in _if_none_match(request.scope["headers"]):
            return Response(status_code=304, headers=headers)
        return Response(answer.body, headers=headers, media_type=JSON)

    def _videos(self, query: bytes) -> Answer | GoogleError:
        params = QueryParams(query)
        try:
            key = self._authorise(params.get("key"))
            parts = self._parts_param(_joined(params, "part"), frozenset(VIDEO_PARTS) | {"id"})
            ids = self._ids_param(_joined(params, "id"))
        except GoogleError as error:
            return error
        built = tuple(p for p in VIDEO_PARTS if p in parts)
        items = [self._item(i, built) for i in ids if i in self._parts]
        etag = etag_of(",".join(built).encode(), *(e.encode() for e, _ in items))
        body = b"".join((
            b'{"kind":"youtube#videoListResponse","etag":"', etag.encode(), b'","items":[',
            b",".join(item for _, item in items),
            b'],"pageInfo":{"totalResults":%d,"resultsPerPage":%d}}' % (len(items), len(items)),
        ))
        return _partial(params, Answer(key, etag, body))

    def _search(self, query: bytes) -> Answer | GoogleError:
        params = QueryParams(query)
        try:
            key = self._authorise(params.get("key"))
            parts = self._parts_param(_joined(params, "part"), SEARCH_PARTS)
            per_page = self._max_results(params.get("maxResults", "5"))
            offset = self._page_param(params.get("pageToken"))
        except GoogleError as error:
            return error
        kinds = {t.strip() for t in (_joined(params, "type") or "video").split(",")}
        ranked = tuple(v.id for v in self.catalogue.search(
            params.get("q", ""), order=params.get("order", "relevance"),
            channel_id=params.get("channelId"), duration=params.get("videoDuration"),
        )) if "video" in kinds else ()
        page = ranked[offset: offset + per_page]
        items = [self._search_items[(i, "snippet" if "snippet" in parts else "id")] for i in page]
        etag = etag_of(b"search %d %d %d" % (offset, per_page, len(ranked)),
                       *(e.encode() for e, _ in items))
        head: dict[str, Any] = {"kind": "youtube#searchListResponse", "etag": etag}
        if offset + per_page < len(ranked):
            head["nextPageToken"] = page_token(offset + per_page)
        if offset > 0:
            head["prevPageToken"] = page_token(offset, backwards=True)
        head["regionCode"] = params.get("regionCode", "US")
        head["pageInfo"] = {"totalResults": len(ranked), "resultsPerPage": per_page}
        body = b"".join((json.dumps(head)[:-1].encode(), b',"items":[',
                         b",".join(item for _, item in items), b"]}"))
        return _partial(params, Answer(key, etag, body))

    def _authorise(self, key: str | None) -> str:
        if not key:
            raise GoogleError(403, KEY_MISSING, "forbidden", status="PERMISSION_DENIED")
        if not self.config.accepts_key(key):
            raise GoogleError(400, KEY_INVALID, "badRequest", status="INVALID_ARGUMENT", details=[{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "youtube.googleapis.com"},
            }])
        return key

    def _charge(self, key: str, cost: int) -> None:
        limit = self.config.youtube.daily_quota
        if limit is not None and not self.quota.charge(key, cost, limit):
            raise GoogleError(403, QUOTA_EXCEEDED, "quotaExceeded", domain="youtube.quota")

    @staticmethod
    def _parts_param(value: str | None, allowed: frozenset[str]) -> set[str]:
        if not value:
            raise GoogleError(400, "Required parameter: part", "required", location="part")
        parts = {p.strip() for p in value.split(",")}
        unknown = sorted(parts - allowed - OWNER_ONLY_PARTS)
        if unknown:
            raise GoogleError(400, f"'{unknown[0]}'", "unknownPart", domain="youtube.part",
                              location="part")
        return parts

    @staticmethod
    def _ids_param(value: str | None) -> list[str]:
        if value is None:
            raise GoogleError(400, "No filter selected. Expected one of: id, chart, myRating",
                              "missingRequiredParameter", domain="youtube.parameter",
                              location="parameters.")
        ids = list(dict.fromkeys(i.strip() for i in value.split(",") if i.strip()))
        if len(ids) > MAX_IDS:
            raise GoogleError(400, "The request specifies an invalid filter parameter.",
                              "invalidFilters", domain="youtube.parameter", location="id")
        return ids

    @staticmethod
    def _page_param(token: str | None) -> int:
        try:
            return page_offset(token) if token else 0
        except ValueError:
            raise GoogleError(400, "The request specifies an invalid page token.",
                              "invalidPageToken", domain="youtube.parameter",
                              location="pageToken") from None

    @staticmethod
    def _max_results(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not 0 <= number <= MAX_IDS:
            raise GoogleError(400, f"Invalid value '{value}'. Values must be within the range:"
                              f" [0, {MAX_IDS}]", "invalidParameter", location="maxResults")
        return number

    def _item(self, video_id: str, parts: tuple[str, ...]) -> tuple[str, bytes]:
        cached = self._items.get((video_id, parts))
        if cached is None:
            chosen = {p: self._parts[video_id][p] for p in parts}
            cached = self._items[(video_id, parts)] = _serialise("youtube#video", video_id, chosen)
        return cached

