"""Where things live and which backend to use, read from environment variables.

Everything a learner may want to change is an environment variable, so the same notebook runs
on SQLite on a laptop and on PostgreSQL or MySQL in CI without editing a cell. Not
pydantic-settings: each value is read from the environment when asked for (a notebook that sets a
variable sees it), and the defaults depend on whether this is a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The source checkout, where tooling finds notebooks, cassettes and docs; an installed package's
core never relies on it."""


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def work_dir() -> Path:
    """Scratch folder for databases, rendered clips and caches (created on demand): ``work/`` in
    the checkout, or in the current folder when the package is installed."""
    checkout = (PROJECT_ROOT / "pyproject.toml").is_file()
    path = _path_from_env("OPUSCLIP_WORK_DIR", (PROJECT_ROOT if checkout else Path.cwd()) / "work")
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Sample media and the catalogue: package data (``opusclip_lib/data``), so an installed
    package finds them as a checkout does; ``OPUSCLIP_DATA_DIR`` points elsewhere."""
    return _path_from_env("OPUSCLIP_DATA_DIR", Path(__file__).resolve().parent / "data")


def cassette_dir() -> Path:
    """Recorded HTTP interactions (vcrpy) that let every API example run offline."""
    return _path_from_env("OPUSCLIP_CASSETTE_DIR", PROJECT_ROOT / "cassettes")


def database_url(work: Path | None = None) -> str:
    """The backend the notebooks use: ``OPUSCLIP_DATABASE_URL``, or a SQLite file in the work
    folder (``work``, default :func:`work_dir`)."""
    return (os.environ.get("OPUSCLIP_DATABASE_URL")
            or f"sqlite:///{(work or work_dir()) / 'opusclip.db'}")


def redis_url() -> str | None:
    """Redis for shared caches and pub/sub; ``None`` means "use the in-memory fallback"."""
    return os.environ.get("OPUSCLIP_REDIS_URL") or None
