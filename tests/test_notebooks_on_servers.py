"""The database notebooks (``1x_*``) must run on PostgreSQL and MySQL too, not only on SQLite.

nbval already runs every notebook on the default SQLite backend; here each database notebook is
executed again in a fresh kernel with ``OPUSCLIP_DATABASE_URL`` pointing at a real server.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from opusclip_lib.runner import discover
from tests.conftest import require_server

DATABASE_NOTEBOOKS = discover("1*")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres", "mysql"])
@pytest.mark.parametrize("path", DATABASE_NOTEBOOKS, ids=[p.stem for p in DATABASE_NOTEBOOKS])
def test_database_notebook_runs_on_server(path, backend, monkeypatch) -> None:
    monkeypatch.setenv("OPUSCLIP_DATABASE_URL", require_server(backend))
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # a failing cell raises CellExecutionError with its traceback
