"""Run the bundled ffmpeg as an asyncio subprocess: bounded, observable, cancellable, atomic.

ffmpeg does the heavy lifting in its own process, so the event loop only waits on it. What the
loop must still get right is everything around the process: how many run at once (ffmpeg is
CPU-bound, more renders than cores only makes each one slower), how progress reaches a caller,
what happens on cancellation (terminate, grace period, kill, always reap), and that a failed or
cancelled render never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import secrets
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg  # type: ignore[import-untyped]  # ships no type information

from opusclip_lib.errors import OpusClipError
from opusclip_lib.observability.instrument import traced_ffmpeg

STDERR_TAIL_LINES = 20
GRACE_S = 2.0
# ffmpeg's default progress period is 0.5 s; a short render would report only once or twice.
PROGRESS_PERIOD_S = 0.2


class FFmpegError(OpusClipError, RuntimeError):
    """ffmpeg failed; carries the exit code and the last lines ffmpeg wrote to stderr."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str,
                 command: Sequence[str] = ()) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.command = list(command)
        super().__init__(f"{message} (exit code {returncode})\n{stderr_tail}".rstrip())


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one ffmpeg run has got, in seconds of output media."""

    seconds: float
    total_s: float | None = None
    done: bool = False

    @property
    def fraction(self) -> float | None:
        """0..1 when the caller told ``run_ffmpeg`` the expected duration, else ``None``."""
        if self.done:
            return 1.0
        if not self.total_s:
            return None
        return min(self.seconds / self.total_s, 1.0)


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped inside the imageio-ffmpeg wheel: nothing to install by hand."""
    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


def cpu_slots() -> int:
    """Cores this process may use (honours CPU affinity, as in a container), at least one."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


# asyncio.Semaphore binds to the first event loop that waits on it, and notebooks and tests
# create new loops; so the default limit is one semaphore per loop, not one per process.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def default_limiter() -> asyncio.Semaphore:
    """The running loop's shared ffmpeg limit: as many concurrent runs as there are cores."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = asyncio.Semaphore(cpu_slots())
    return limiter


@contextmanager
def atomic_output(final: str | os.PathLike[str], *,
                  temp_dir: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yield a temp path next to ``final``; rename it over ``final`` only if the block succeeds.

    The temp name is hidden, random and in the destination folder, so the rename is atomic
    (same filesystem), and keeps the real suffix so ffmpeg still picks the right muxer; ffmpeg
    creates the file itself, with the usual permissions. On any exception, cancellation
    included, the temp file is removed and ``final`` is untouched. ``temp_dir`` (on the same
    filesystem) holds the temp file instead: a folder whose leftovers someone cleans up.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    folder = final.parent if temp_dir is None else Path(temp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}"
    try:
        yield temp
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)


async def _stop(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """Terminate, give ffmpeg ``grace_s`` seconds to exit, then kill; always reap."""
    if process.returncode is not None:
        return
    with suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        with suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@asynccontextmanager
async def spawn(command: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                grace_s: float = GRACE_S) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start ``command`` with piped stdout/stderr; on leaving the block it is stopped and reaped.

    The stop is shielded so that a second cancellation arriving during the grace period cannot
    leave the process running.
    """
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        await asyncio.shield(_stop(process, grace_s))


async def _read_tail(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    """Drain ``stream`` to EOF (a full pipe would stall ffmpeg), keeping only the last lines."""
    async for raw in stream:
        lines.append(raw.decode(errors="replace").rstrip())


async def _notify(callback: ProgressCallback | None, progress: Progress) -> None:
    if callback is not None:
        result = callback(progress)
        if inspect.isawaitable(result):
            await result


async def _follow_progress(stream: asyncio.StreamReader, total_s: float | None,
                           callback: ProgressCallback | None) -> float:
    """Parse ``-progress`` blocks (key=value lines ending in ``progress=...``); return seconds done.

    Only ``progress=continue`` blocks are forwarded: the caller reports ``done`` itself, once the
    exit code says the run really succeeded.
    """
    seconds = 0.0
    async for raw in stream:
        key, _, value = raw.decode(errors="replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            seconds = max(seconds, int(value) / 1_000_000)
        elif key == "progress" and value == "continue":
            await _notify(callback, Progress(seconds, total_s))
    return seconds


@traced_ffmpeg
async def run_ffmpeg(
    args: Sequence[str | os.PathLike[str]],
    *,
    output: str | os.PathLike[str] | None = None,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    limiter: asyncio.Semaphore | None = None,
    cwd: str | os.PathLike[str] | None = None,
    grace_s: float = GRACE_S,
) -> None:
    """Run ``ffmpeg ARGS [-y OUTPUT]`` under ``limiter`` (default: one slot per core).

    ``duration_s`` (of the expected output) lets :class:`Progress` report a fraction.
    ``on_progress`` may be sync or async; it gets increasing progress and a final ``done``.
    Raises :class:`FFmpegError` with the stderr tail if ffmpeg exits non-zero. Write to a path
    from :func:`atomic_output` so a failure or cancellation leaves no file behind.
    """
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-progress", "pipe:1", "-nostats", "-stats_period", str(PROGRESS_PERIOD_S),
        *(os.fspath(arg) for arg in args),
    ]
    if output is not None:
        command += ["-y", os.fspath(output)]
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    async with limiter or default_limiter(), spawn(command, cwd=cwd, grace_s=grace_s) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_read_tail(process.stderr, tail))
                seconds = await _follow_progress(process.stdout, duration_s, on_progress)
        except BaseExceptionGroup as failed:
            # e.g. the progress callback's own error, unwrapped from the group
            raise failed.exceptions[0] from None
        returncode = await process.wait()
    if returncode != 0:
        raise FFmpegError("ffmpeg failed", returncode=returncode, stderr_tail="\n".join(tail),
                          command=command)
    # Two stats, not worth a thread.
    if output is not None and not (os.path.exists(output) and os.path.getsize(output)):  # noqa: ASYNC240
        raise FFmpegError("ffmpeg exited 0 but wrote nothing", returncode=returncode,
                          stderr_tail="\n".join(tail), command=command)
    await _notify(on_progress, Progress(seconds, duration_s, done=True))


_FILTER_LINE = re.compile(r"^\s*[A-Z.|]{2,3}\s+(\w+)\s+\S+->\S+", re.MULTILINE)
_filters: frozenset[str] | None = None


async def ffmpeg_filters() -> frozenset[str]:
    """Names of the filters the bundled ffmpeg was built with (asked once, then cached)."""
    global _filters
    if _filters is None:
        async with spawn([ffmpeg_exe(), "-hide_banner", "-filters"]) as process:
            listing, _ = await process.communicate()
        _filters = frozenset(_FILTER_LINE.findall(listing.decode(errors="replace")))
    return _filters
