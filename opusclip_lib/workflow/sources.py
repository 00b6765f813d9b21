"""What a user may hand the workflow: a YouTube id or URL, another web page, or a local file.

Each becomes one ``videos`` row, found again the next time (the idempotency key):

* a YouTube id or watch URL: the id itself (metadata from the YouTube Data API);
* any other URL (a page yt-dlp supports, or a direct media file): a key from the URL;
* a local file: a key from its content's SHA-256, so the same file under two names, or given
  twice, is one video. A path that is not a file still gets a row (keyed by its path), so its
  job can fail with the reason instead of the command failing before any record exists.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from opusclip_lib.db import YOUTUBE_ID, Executor, Video, videos
from opusclip_lib.workflow.transcription import sha256_file

YOUTUBE_URL = re.compile(r"^https?://(?:(?:www|m|music)\.)?(?:youtube\.com/(?:watch\?(?:\S*&)?v="
                         r"|shorts/|embed/|live/)|youtu\.be/)([A-Za-z0-9_-]{11})(?:[&?#/]\S*)?$")


@dataclass(frozen=True, slots=True)
class Source:
    key: str
    """The video's 11-character key (``videos.youtube_id``)."""
    source: str | None
    """The absolute path or the URL; ``None`` for a YouTube video."""
    url: str | None = None
    content_sha256: str | None = None


async def resolve(text: str) -> Source:
    """The :class:`Source` ``text`` names (a file is hashed, in a thread)."""
    text = text.strip()
    if match := YOUTUBE_URL.match(text):
        return Source(match.group(1), None)
    if text.startswith(("http://", "https://")):
        return Source(videos.url_key(text), text, url=text)
    path = Path(text).expanduser().absolute()  # noqa: ASYNC240 - getcwd: no I/O worth a thread
    if YOUTUBE_ID.fullmatch(text) and not path.exists():
        return Source(text, None)
    if not path.is_file():
        return Source(videos.url_key(str(path)), str(path), url=path.as_uri())
    digest = await asyncio.to_thread(sha256_file, path)
    return Source(videos.source_key(bytes.fromhex(digest)), str(path), url=path.as_uri(),
                  content_sha256=digest)


async def register(ex: Executor, source: Source) -> Video:
    """The source's video row, inserted (status ``queued``) unless it is known already. A known
    file found under a new path is pointed at that path (the old one may be gone)."""
    known = None
    if source.content_sha256 is not None:
        known = await videos.find_by_content(ex, source.content_sha256)
    if known is None:
        known = await videos.find_video(ex, source.key)
    if known is None:
        return await videos.insert_video(ex, source.key, url=source.url, source=source.source,
                                         content_sha256=source.content_sha256, status="queued")
    if source.source is not None and known.source != source.source:
        return await videos.update_video(ex, known.id, source=source.source, url=source.url)
    return known
