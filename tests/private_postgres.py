"""A PostgreSQL server of the test's own, in a temporary folder, that the test may restart.

The shared server (``OPUSCLIP_POSTGRES_URL``) serves every other test, so a test that takes its
database away starts its own with the same binaries (``initdb`` and ``pg_ctl``, from Debian's
``postgresql`` package). PostgreSQL refuses to run as root, so under root the commands run as
the ``postgres`` user, in a folder that user owns.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from opusclip_lib.local_server import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:
        reason = f"{name} not found (Debian: apt-get install postgresql)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@dataclass(frozen=True, slots=True)
class PrivatePostgres:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def pg_ctl(self, *args: str, check: bool = True) -> None:
        await _run(_binary("pg_ctl"), "-D", str(self.folder / "data"), "-w", *args, check=check)

    async def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        await self.pg_ctl("-l", str(self.folder / "server.log"), "-o", options, "start")

    async def stop(self) -> None:
        await self.pg_ctl("-m", "fast", "stop")


async def _run(*command: str, check: bool = True) -> None:
    prefix: Sequence[str] = ("runuser", "-u", "postgres", "--") if os.geteuid() == 0 else ()
    process = await asyncio.create_subprocess_exec(
        *prefix, *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    assert process.returncode == 0 or not check, f"{' '.join(command)}: {out.decode()[-2000:]}"


@asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """Yield a started server (trust authentication, database ``postgres``); stop and remove it
    on exit."""
    folder = Path(tempfile.mkdtemp(prefix="opusclip-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PrivatePostgres(folder, free_port())
    try:
        await _run(_binary("initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8")
        await server.start()
        try:
            yield server
        finally:
            await server.pg_ctl("-m", "immediate", "stop", check=False)  # a test may stop it
    finally:
        shutil.rmtree(folder, ignore_errors=True)
