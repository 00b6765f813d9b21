"""Where finished artifacts live so every worker (and the user) can reach them: the store.

A clip is not finished while it exists only on one worker's local disk. A stage writes into its
worker's work folder (scratch, fast, private), then puts each artifact it made into the store
*before* its commit says the stage is done; a worker that resumes someone else's job gets what
it needs back from the store instead of paying for it again.

The interface is object-store shaped (``put``/``get``/``exists``/``url`` by key), so an S3 or
GCS bucket fits behind it; :class:`DirectoryStore` is the default, a folder every worker mounts
(NFS, a shared volume). A key is the artifact's path under the work folder
(``videos/<key>/clips/7.mp4``). With no store configured the work folder is the store: each put
is then a no-op and nothing is copied, which is the single-machine case.

Writes are atomic: a put copies to a hidden temporary name in the destination folder, fsyncs
it, renames it over the final name and fsyncs the folder, so a reader (or a crash) never meets
half a file under a final name. A put is idempotent: the same content again writes nothing, so a
stage re-run after a crash puts its artifacts again harmlessly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from opusclip_lib.media import atomic_output
from opusclip_lib.workflow.errors import ArtifactKeyError, ArtifactStoreError

_BLOCK = 1 << 20


class ArtifactStore(Protocol):
    """Artifacts by key (a relative POSIX path); every method is safe to repeat."""

    async def put(self, key: str, source: Path) -> str:
        """Store ``source``'s bytes under ``key`` (atomically, idempotently); its URL."""
        ...

    async def get(self, key: str, dest: Path) -> bool:
        """Copy ``key`` to ``dest`` (atomically); ``False`` if the store has no such key."""
        ...

    async def exists(self, key: str) -> bool: ...

    def url(self, key: str) -> str:
        """Where a user (or another worker) finds ``key``: a path here, a URL in a bucket."""
        ...


def _same_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    digests = []
    for path in (a, b):
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while block := stream.read(_BLOCK):
                digest.update(block)
        digests.append(digest.digest())
    return digests[0] == digests[1]


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def durable_copy(source: Path, dest: Path) -> None:
    """``source`` copied to ``dest`` through a hidden temp name in ``dest``'s folder, fsynced,
    renamed into place, and the rename fsynced: ``dest`` is never a partial file."""
    with atomic_output(dest) as temp, source.open("rb") as reader, temp.open("wb") as writer:
        shutil.copyfileobj(reader, writer, _BLOCK)
        writer.flush()
        os.fsync(writer.fileno())
    _fsync_folder(dest.parent)


@dataclass(frozen=True, slots=True)
class DirectoryStore:
    """The store as a folder (``OPUSCLIP_ARTIFACTS`` / ``opusclip worker --artifacts DIR``)."""

    root: Path

    def path(self, key: str) -> Path:
        """The file behind ``key``; :class:`ArtifactKeyError` for a key that would leave the
        root."""
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ArtifactKeyError(f"artifact key {key!r} is not a relative path inside the "
                                   "store")
        return self.root.joinpath(*parts)

    async def put(self, key: str, source: Path) -> str:
        dest = self.path(key)
        try:
            await asyncio.to_thread(self._put, source, dest)
        except OSError as error:
            raise ArtifactStoreError(f"putting {key} into {self.root}: {error}") from error
        return str(dest)

    @staticmethod
    def _put(source: Path, dest: Path) -> None:
        if dest.exists() and (dest.samefile(source) or _same_content(source, dest)):
            return
        durable_copy(source, dest)

    async def get(self, key: str, dest: Path) -> bool:
        stored = self.path(key)
        try:
            return await asyncio.to_thread(self._get, stored, dest)
        except OSError as error:
            raise ArtifactStoreError(f"getting {key} from {self.root}: {error}") from error

    @staticmethod
    def _get(stored: Path, dest: Path) -> bool:
        if not stored.is_file():
            return False
        if not (dest.exists() and dest.samefile(stored)):
            durable_copy(stored, dest)
        return True

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def url(self, key: str) -> str:
        return str(self.path(key))


@dataclass(frozen=True, slots=True)
class Mirror:
    """A worker's work folder and the store it publishes into, addressed by local path: the
    key of ``root / "videos/x/a.png"`` is ``videos/x/a.png``."""

    root: Path
    store: ArtifactStore

    def key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def url(self, path: Path) -> str:
        return self.store.url(self.key(path))

    async def stored(self, path: Path) -> bool:
        return await self.store.exists(self.key(path))

    async def fetched(self, path: Path) -> bool:
        """``path`` is on local disk: already, or copied from the store now."""
        if path.exists():  # noqa: ASYNC240 - a stat, not worth a thread
            return True
        return await self.store.get(self.key(path), path)

    async def publish(self, path: Path) -> str:
        """``path`` put into the store; its URL (what rows record)."""
        return await self.store.put(self.key(path), path)
