"""``opusclip clip`` end to end, as a user runs it: a separate process against the sandbox served
on loopback, on a file, on a URL yt-dlp downloads from a local web server, on the second sample;
then bad input, each failing with a typed error that names the source and the stage."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opusclip_lib.media import load_transcript, probe, run_ffmpeg, sample_transcript, sample_video
from opusclip_lib.media.samples import SECOND_SAMPLE_VIDEO_ID
from opusclip_lib.sandbox import SandboxConfig, SandboxURLs, serve
from opusclip_lib.workflow.transcription import sha256_file
from tests.media_files import corrupt_mp4, mute_video

CLIP_SECONDS = 3.0
CUE = re.compile(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)")


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxURLs]:
    config = SandboxConfig.unlimited()
    config.stability.long_side_px = 64  # drawing is the sandbox's CPU, not the pipeline's
    async with serve(config) as urls:
        yield urls


@contextlib.contextmanager
def web_server(folder: Path) -> Iterator[str]:
    """A plain HTTP server on loopback serving ``folder`` (404 for anything else)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No request log on stderr."""


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel does) and never answers: a server that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/talk.mp4"


def opusclip_clip(tmp_path: Path, root: str, source: str, *extra: str) -> dict[str, Any]:
    """``opusclip clip`` in its own process; its JSON summary (the last line of stdout)."""
    command = [sys.executable, "-m", "opusclip_lib.cli", "clip", source, "--target", root,
               "--database-url", f"sqlite:///{tmp_path}/clip.db", "--work-dir",
               str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--max-clip-seconds",
               str(CLIP_SECONDS), "--clips", "2", "--quiet", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == (0 if summary["status"] == "completed" else 1), done.stderr
    return summary


def cues(srt: Path) -> list[tuple[float, float, str]]:
    found = []
    for match in CUE.finditer(srt.read_text()):
        h1, m1, s1, ms1, h2, m2, s2, ms2, text = match.groups()
        start = int(h1) * 3600 + int(m1) * 60 + int(s1) + int(ms1) / 1000
        end = int(h2) * 3600 + int(m2) * 60 + int(s2) + int(ms2) / 1000
        found.append((start, end, text))
    return found


def vocabulary(video_id: str) -> set[str]:
    return {word.text.lower().strip(".,!?;:") for word in
            load_transcript(sample_transcript(video_id)).words}


async def assert_good_clips(out: Path, video_id: str, *, other: str) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["clips"]
    own, theirs = vocabulary(video_id), vocabulary(other)
    spoken: set[str] = set()
    for clip in manifest["clips"]:
        for entry in clip["files"].values():
            assert sha256_file(out / entry["path"]) == entry["sha256"]
        video = out / clip["files"]["video"]["path"]
        await run_ffmpeg(["-i", str(video), "-f", "null", "-"])  # decodes to the end
        info = await probe(video)
        assert info.width * 16 == info.height * 9
        assert info.duration_s > 1.0
        length = clip["end_s"] - clip["start_s"]
        for start, end, text in cues(out / clip["files"]["srt"]["path"]):
            assert 0 <= start < end <= length + 1e-3
            spoken |= {word.lower().strip(".,!?;:") for word in text.split()}
        assert (out / clip["files"]["vtt"]["path"]).read_text().startswith("WEBVTT")
    assert spoken <= own
    assert spoken - theirs, "the captions should be this video's words, not the other's"
    return manifest


def snapshot(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


async def test_a_file_gives_captioned_clips_and_a_second_run_does_nothing(
        sandbox: SandboxURLs, tmp_path: Path) -> None:
    summary = await asyncio.to_thread(opusclip_clip, tmp_path, sandbox.root, str(sample_video()))
    assert summary["status"] == "completed"
    manifest = await assert_good_clips(tmp_path / "out", "opusSample1",
                                       other=SECOND_SAMPLE_VIDEO_ID)
    assert all({"thumbnail", "voiceover", "voiced_video"} <= set(c["files"])
               for c in manifest["clips"])
    before = snapshot(tmp_path)
    again = await asyncio.to_thread(opusclip_clip, tmp_path, sandbox.root, str(sample_video()))
    assert sum(again["api_calls"].values()) == 0
    assert again["written"] == []
    assert snapshot(tmp_path) == before


async def test_a_url_is_downloaded_by_yt_dlp(sandbox: SandboxURLs, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "talk.mp4").write_bytes(sample_video().read_bytes())
    with web_server(site) as url:
        summary = await asyncio.to_thread(opusclip_clip, tmp_path, sandbox.root,
                                          f"{url}/talk.mp4", "--no-voiceover")
    assert summary["status"] == "completed"
    manifest = await assert_good_clips(tmp_path / "out", "opusSample1",
                                       other=SECOND_SAMPLE_VIDEO_ID)
    assert manifest["source"] == f"{url}/talk.mp4"
    assert not list((tmp_path / "work").rglob("*.part"))


async def test_the_second_sample_gets_its_own_words(sandbox: SandboxURLs,
                                                    tmp_path: Path) -> None:
    summary = await asyncio.to_thread(opusclip_clip, tmp_path, sandbox.root,
                                      str(sample_video(SECOND_SAMPLE_VIDEO_ID)), "--no-voiceover")
    assert summary["status"] == "completed"
    await assert_good_clips(tmp_path / "out", SECOND_SAMPLE_VIDEO_ID, other="opusSample1")


# --- bad input ---------------------------------------------------------------------------------

def _bad_sources(tmp_path: Path, url: str) -> dict[str, tuple[str, str, str]]:
    """name -> (source, stage, error code)."""
    (tmp_path / "notes.txt").write_text("not a video at all\n" * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "site" / "page.html").write_text("<html><body>No video here.</body></html>")
    return {
        "missing file": (str(tmp_path / "nowhere.mp4"), "metadata", "source_not_found"),
        "not media": (str(tmp_path / "notes.txt"), "metadata", "not_media"),
        "zero length": (str(tmp_path / "empty.mp4"), "metadata", "not_media"),
        "corrupt mp4": (str(corrupt_mp4(tmp_path / "corrupt.mp4")), "metadata", "not_media"),
        "no audio": (str(mute_video(tmp_path / "mute.mp4")), "metadata", "no_audio"),
        "404": (f"{url}/gone.mp4", "metadata", "download_failed"),
        "unsupported": (f"{url}/page.html", "metadata", "unsupported_source"),
        "too long": (str(sample_video()), "metadata", "source_too_long"),
    }


async def test_bad_input_fails_with_the_source_and_the_stage(sandbox: SandboxURLs,
                                                             tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    with web_server(tmp_path / "site") as url:
        for name, (source, stage, code) in _bad_sources(tmp_path, url).items():
            extra = ("--max-duration", "60") if name == "too long" else ()
            summary = await asyncio.to_thread(opusclip_clip, tmp_path / name.replace(" ", "_"),
                                              sandbox.root, source, *extra)
            assert (name, summary["status"]) == (name, "failed")
            assert (name, summary["stage"], summary["error_code"]) == (name, stage, code)
            assert summary["error"].startswith(f"{stage}: {source}: "), (name, summary)
            work = tmp_path / name.replace(" ", "_") / "work"
            assert not [p for p in work.rglob("*") if ".part" in p.name], name
            assert not (tmp_path / name.replace(" ", "_") / "out").exists(), name


async def test_a_server_that_never_answers_times_out(sandbox: SandboxURLs,
                                                     tmp_path: Path) -> None:
    with silent_server() as url:
        command_timeout = ("--download-timeout", "1")
        summary = await asyncio.to_thread(opusclip_clip, tmp_path, sandbox.root, url,
                                          *command_timeout)
    assert (summary["status"], summary["stage"], summary["error_code"]) == (
        "failed", "metadata", "download_failed")
    assert "timed out" in summary["error"].lower()


def interrupted_at(tmp_path: Path, root: str, source: str, stage: str) -> int:
    """``opusclip clip`` with progress on stderr, sent Ctrl-C (SIGINT) once ``stage`` starts."""
    command = [sys.executable, "-m", "opusclip_lib.cli", "clip", source, "--target", root,
               "--database-url", f"sqlite:///{tmp_path}/clip.db", "--work-dir",
               str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--max-clip-seconds",
               str(CLIP_SECONDS), "--clips", "2"]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith(f"[{stage}]"):
                process.send_signal(signal.SIGINT)
                break
        process.stderr.read()
        return process.wait(timeout=60)


async def test_ctrl_c_leaves_no_partial_file_and_a_second_run_resumes(
        sandbox: SandboxURLs, tmp_path: Path) -> None:
    code = await asyncio.to_thread(interrupted_at, tmp_path, sandbox.root, str(sample_video()),
                                   "render")
    assert code == 130
    assert not [p for p in tmp_path.rglob("*") if ".part" in p.name]  # noqa: ASYNC240 - a test's look at its own files
    assert not (tmp_path / "out").exists()
    summary = await asyncio.to_thread(opusclip_clip, tmp_path, sandbox.root, str(sample_video()))
    assert summary["status"] == "completed"
    assert summary["api_calls"]["openai"] == 0  # transcript and highlights were kept
    await assert_good_clips(tmp_path / "out", "opusSample1", other=SECOND_SAMPLE_VIDEO_ID)


def test_the_worker_takes_sources_and_a_target(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "opusclip_lib.workflow.worker", "--database-url",
               f"sqlite:///{tmp_path}/worker.db", "--work-dir", str(tmp_path / "work"),
               "--target", "sandbox", "--no-render", "--clips", "1", "--max-clip-seconds", "2",
               "--videos", f"{sample_video(SECOND_SAMPLE_VIDEO_ID)},opusSample1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["statuses"] == {"completed": 2}
