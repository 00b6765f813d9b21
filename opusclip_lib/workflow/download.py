"""Downloading the video of a web page (any site yt-dlp supports, or a direct media URL).

yt-dlp runs in a worker thread, not a subprocess. A subprocess pays the interpreter's start-up
and yt-dlp's import again on every download, and reports progress as text to parse; a thread
pays the import once per process and gets progress as dicts from yt-dlp's progress hooks. The
work is network-bound and yt-dlp's socket reads release the GIL, so the event loop stays free.
A thread cannot be killed, so cancelling works through the hook: it raises
:class:`~yt_dlp.utils.DownloadCancelled` at its next call (one per chunk received), and the
coroutine waits for the thread to stop before it returns, so no thread writes on behind it;
``socket_timeout`` bounds a server that stops sending.

yt-dlp writes ``NAME.part`` and resumes it (an HTTP range request) when a run was stopped; the
finished file is renamed into place atomically by the caller.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yt_dlp
from yt_dlp.utils import DownloadCancelled, DownloadError

from opusclip_lib.media import ffmpeg_exe

if TYPE_CHECKING:
    from yt_dlp import _YoutubeDLOptions
    from yt_dlp.extractor.common import _InfoDict
from opusclip_lib.workflow.errors import (
    DownloadFailedError,
    SourceError,
    SourceTooLargeError,
    UnsupportedSourceError,
)

logger = logging.getLogger(__name__)

FORMAT = "bv*[height<=1080]+ba/b[height<=1080]/bv*+ba/b"
"""The best video up to 1080p with its audio; clips are 1080 wide at most."""


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    downloaded_bytes: int
    total_bytes: int | None

    @property
    def fraction(self) -> float | None:
        return min(self.downloaded_bytes / self.total_bytes, 1.0) if self.total_bytes else None


OnProgress = Callable[[DownloadProgress], Awaitable[None]]


class _Stop(DownloadCancelled):
    """Raised inside yt-dlp's thread to stop it: cancelled, or over the size limit."""


class _Log:
    """yt-dlp's messages into logging, never onto the terminal."""

    def debug(self, message: str) -> None:
        logger.debug("%s", message)

    def info(self, message: str) -> None:
        logger.debug("%s", message)

    def warning(self, message: str) -> None:
        logger.info("%s", message)

    def error(self, message: str) -> None:
        logger.info("%s", message)


def _options(timeout_s: float) -> _YoutubeDLOptions:
    return {"quiet": True, "no_warnings": True, "noprogress": True,
            "noplaylist": True, "retries": 1, "extractor_retries": 0, "fragment_retries": 1,
            "ffmpeg_location": ffmpeg_exe(),
            # yt-dlp calls only debug, info, warning and error on it; the stub asks for more.
            "logger": _Log(),  # type: ignore[typeddict-item]
            # The stub says int; yt-dlp hands it to the socket, which takes seconds as a float.
            "socket_timeout": timeout_s}  # type: ignore[typeddict-item]


def _plain(info: _InfoDict | None) -> dict[str, Any]:
    """yt-dlp's answer as JSON data (its stub names only some of the keys we read)."""
    return dict(info or {})


def _failure(url: str, error: DownloadError, stage: str) -> SourceError:
    message = str(error.msg if hasattr(error, "msg") else error).removeprefix("ERROR: ")
    if "Unsupported URL" in message:
        return UnsupportedSourceError(url, "no yt-dlp extractor supports this page, and it is not "
                                      "a media file", stage=stage)
    return DownloadFailedError(url, message, stage=stage)


async def page_info(url: str, *, timeout_s: float, stage: str) -> dict[str, Any]:
    """What the page says about its video (title, duration, uploader, ...), nothing downloaded."""
    def extract() -> dict[str, Any]:
        with yt_dlp.YoutubeDL(_options(timeout_s)) as ydl:
            return _plain(ydl.sanitize_info(ydl.extract_info(url, download=False)))

    try:
        return await asyncio.to_thread(extract)
    except DownloadError as error:
        raise _failure(url, error, stage) from None


async def download(url: str, folder: Path, *, timeout_s: float, max_bytes: int | None,
                   stage: str, on_progress: OnProgress | None = None) -> Path:
    """Download ``url``'s video into ``folder`` (resuming a ``.part`` left there); the path."""
    loop = asyncio.get_running_loop()
    updates: asyncio.Queue[DownloadProgress | None] = asyncio.Queue()
    stop = threading.Event()
    too_large: list[int] = []

    def hook(status: Mapping[str, Any]) -> None:
        if stop.is_set():
            raise _Stop("cancelled")
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        done = int(status.get("downloaded_bytes") or 0)
        if max_bytes is not None and max(done, int(total or 0)) > max_bytes:
            too_large.append(max(done, int(total or 0)))
            raise _Stop("too large")
        loop.call_soon_threadsafe(updates.put_nowait,
                                  DownloadProgress(done, int(total) if total else None))

    def fetch() -> Path:
        options: _YoutubeDLOptions = {
            **_options(timeout_s), "format": FORMAT, "merge_output_format": "mp4",
            "outtmpl": str(folder / "media.%(ext)s"), "continuedl": True, "progress_hooks": [hook]}
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                info = _plain(ydl.sanitize_info(ydl.extract_info(url, download=True)))
                return Path(info["requested_downloads"][0]["filepath"])
        finally:
            loop.call_soon_threadsafe(updates.put_nowait, None)

    async def forward() -> None:
        while (update := await updates.get()) is not None:
            if on_progress is None:
                continue
            try:
                await on_progress(update)
            except Exception:  # a lost progress note must not fail the download it reports
                logger.exception("download progress note failed for %s", url)

    def refused() -> SourceTooLargeError:
        return SourceTooLargeError(url, f"the media is {too_large[-1]:,} bytes; the limit is "
                                   f"{max_bytes:,}", stage=stage)

    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    worker = asyncio.ensure_future(asyncio.to_thread(fetch))
    relay = asyncio.ensure_future(forward())
    try:
        path = await asyncio.shield(worker)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([worker])  # the thread ends at its next hook call or socket timeout
        raise
    except _Stop:
        raise refused() from None
    except DownloadError as error:
        raise (refused() if too_large else _failure(url, error, stage)) from None
    finally:
        await asyncio.wait([relay])
    return path
