"""The artifact store: atomic and idempotent puts, and workers in their own work folders that
publish into one shared store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from opusclip_lib.db import connect
from opusclip_lib.workflow.artifacts import DirectoryStore, Mirror
from opusclip_lib.workflow.errors import ArtifactKeyError

CRASHING_PUT = """
import sys
from pathlib import Path
from opusclip_lib.workflow.artifacts import durable_copy
durable_copy(Path(sys.argv[1]), Path(sys.argv[2]))
"""


def _hidden(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part*"))


async def test_a_put_killed_mid_write_leaves_the_final_name_whole(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    old = tmp_path / "old.bin"
    old.write_bytes(b"first version " * 1000)
    final = Path(await store.put("videos/x/clip.mp4", old))
    # The new content comes through a pipe the test feeds: one and a half of the copy's 1 MiB
    # blocks, so the first block is on disk and the copy waits for the rest when it dies.
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    # A child the test kills by signal: the loop never waits on it.
    writer = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", CRASHING_PUT, str(fifo), str(final)])
    try:
        with fifo.open("wb") as feed:
            feed.write(b"x" * (3 << 19))
            feed.flush()
            async with asyncio.timeout(30):
                while not any(temp.stat().st_size for temp in _hidden(final.parent)):
                    assert writer.poll() is None
                    await asyncio.sleep(0.01)
            writer.send_signal(signal.SIGKILL)
            writer.wait()
    finally:
        writer.kill()
        writer.wait()
    assert final.read_bytes() == old.read_bytes(), "the old artifact must stay whole"  # noqa: ASYNC240 - a stat or a small file
    assert _hidden(final.parent), "the killed copy's temp file is what is left behind"
    assert await store.exists("videos/x/clip.mp4")


async def test_put_is_idempotent_and_get_copies_atomically(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    source = tmp_path / "a.png"
    source.write_bytes(b"png bytes")
    url = await store.put("videos/x/clips/1.png", source)
    inode = Path(url).stat().st_ino  # noqa: ASYNC240 - a stat or a small file
    assert await store.put("videos/x/clips/1.png", source) == url  # again: nothing rewritten
    assert Path(url).stat().st_ino == inode  # noqa: ASYNC240 - a stat or a small file
    source.write_bytes(b"other bytes")
    await store.put("videos/x/clips/1.png", source)  # new content replaces, atomically
    assert Path(url).read_bytes() == b"other bytes"  # noqa: ASYNC240 - a stat or a small file
    assert _hidden(Path(url).parent) == []

    dest = tmp_path / "elsewhere" / "1.png"
    assert await store.get("videos/x/clips/1.png", dest)
    assert dest.read_bytes() == b"other bytes"
    assert not await store.get("videos/x/clips/2.png", tmp_path / "2.png")
    assert not await store.exists("videos/x/clips/2.png")
    for bad in ("../escape", "/etc/passwd", "", "a/./b"):
        with pytest.raises(ArtifactKeyError):
            await store.exists(bad)


async def test_the_work_folder_as_its_own_store_copies_nothing(tmp_path: Path) -> None:
    mirror = Mirror(tmp_path, DirectoryStore(tmp_path))
    made = tmp_path / "videos" / "x" / "transcript.json"
    made.parent.mkdir(parents=True)
    made.write_text("{}")
    assert await mirror.publish(made) == str(made)
    assert await mirror.fetched(made)
    assert sorted(p.name for p in made.parent.iterdir()) == ["transcript.json"]


def _batch(database_url: str, work_dir: Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opusclip_lib.workflow.worker", "--database-url", database_url,
         "--videos", "opusSample1", "--work-dir", str(work_dir), "--artifacts", str(store),
         "--clips", "1", "--max-clip-seconds", "1", "--heartbeat", "0.2",
         "--retry-backoff", "0.05"], capture_output=True, text=True, timeout=120, check=False)


async def test_workers_in_their_own_folders_publish_into_one_store(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/workflow.db"
    store = tmp_path / "shared"
    first = await asyncio.to_thread(_batch, database_url, tmp_path / "host-a", store)
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout.splitlines()[-1])["statuses"] == {"completed": 1}
    async with connect(database_url) as db:
        [clip] = await db.fetch("SELECT * FROM clips")
        for column in ("clip_path", "thumbnail_path", "voiceover_path"):
            assert Path(clip[column]).is_relative_to(store), column
            assert Path(clip[column]).is_file(), column  # noqa: ASYNC240 - a stat or a small file
        calls = await db.fetchval("SELECT count(*) FROM api_calls")
        assert calls == 5  # YouTube, transcription, highlights, one image, one voice
        renders = await db.fetchval("SELECT count(*) FROM job_events WHERE message LIKE "
                                    "'render: clip % ffmpeg started'")
        assert renders == 1
        # Another host, an empty work folder: the job is sent round again; everything it
        # needs comes back from the store, nothing is paid for or rendered twice.
        await db.execute("UPDATE videos SET status = 'downloaded'")
        await db.execute("UPDATE processing_jobs SET status = 'pending', stage = NULL, "
                         "finished_at = NULL")
    second = await asyncio.to_thread(_batch, database_url, tmp_path / "host-b", store)
    assert second.returncode == 0, second.stderr[-3000:]
    async with connect(database_url) as db:
        assert await db.fetchval("SELECT count(*) FROM api_calls") == calls
        assert await db.fetchval("SELECT count(*) FROM job_events WHERE message LIKE "
                                 "'render: clip % ffmpeg started'") == renders
        assert await db.fetchval("SELECT status FROM processing_jobs") == "completed"
    assert (tmp_path / "host-b" / "videos" / "opusSample1" / "transcript.json").is_file()
