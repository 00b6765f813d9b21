"""Notebooks that use a database must run on the servers too, not only on SQLite.

nbval already runs every notebook on the default SQLite backend; here each one is executed again
in a fresh kernel with ``OPUSCLIP_DATABASE_URL`` pointing at a real server: the database notebooks
(``1x_*``) on PostgreSQL and MariaDB, the integrated ones (``3x_*``) on PostgreSQL. Each run gets
a private scratch schema/database on that server and a work folder of its own, so runs can go
side by side with each other and with nbval's (``pytest -n``) without sharing a row or a file.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import nbformat
import pytest

from opusclip_lib.db.maintenance import create_scratch, drop_scratch
from opusclip_lib.runner import discover, notebook_client
from tests.conftest import require_server

RUNS = [(path, backend) for path in discover("1*") for backend in ("postgres", "mysql")] + [
    (path, "postgres") for path in discover("3*")
]


@pytest.fixture
def scratch_url(backend: str) -> Iterator[str]:
    """A migrated scratch namespace on ``backend``'s server, dropped afterwards."""
    server, name = require_server(backend), f"opusclip_notebook_{secrets.token_hex(4)}"
    url = asyncio.run(create_scratch(server, name))
    try:
        yield url
    finally:
        asyncio.run(drop_scratch(server, name))


@pytest.mark.slow
@pytest.mark.parametrize(("path", "backend"), RUNS, ids=[f"{p.stem}-{b}" for p, b in RUNS])
def test_notebook_runs_on_server(path, scratch_url, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPUSCLIP_DATABASE_URL", scratch_url)
    monkeypatch.setenv("OPUSCLIP_WORK_DIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    # a failing cell raises, with its traceback
    notebook_client(notebook, path, timeout_s=300).execute()
