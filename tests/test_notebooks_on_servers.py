"""Notebooks that use a database must run on the servers too, not only on SQLite.

nbval already runs every notebook on the default SQLite backend; here each one is executed again
in a fresh kernel with ``OPUSCLIP_DATABASE_URL`` pointing at a real server: the database notebooks
(``1x_*``) on PostgreSQL and MariaDB, the integrated ones (``3x_*``) on PostgreSQL.
"""

from __future__ import annotations

import nbformat
import pytest

from opusclip_lib.runner import discover, notebook_client
from tests.conftest import require_server

RUNS = [(path, backend) for path in discover("1*") for backend in ("postgres", "mysql")] + [
    (path, "postgres") for path in discover("3*")
]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "backend"), RUNS, ids=[f"{p.stem}-{b}" for p, b in RUNS])
def test_notebook_runs_on_server(path, backend, monkeypatch) -> None:
    monkeypatch.setenv("OPUSCLIP_DATABASE_URL", require_server(backend))
    notebook = nbformat.read(path, as_version=4)
    # a failing cell raises, with its traceback
    notebook_client(notebook, path, timeout_s=300).execute()
