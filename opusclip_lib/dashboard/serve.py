"""``opusclip dashboard [--database URL] [--host H] [--port P]``: run the board under uvicorn
until Ctrl-C or SIGTERM (a graceful stop: browsers are told to reconnect)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from opusclip_lib import config
from opusclip_lib.dashboard.app import build_app
from opusclip_lib.dashboard.board import DEFAULTS, BoardSettings

DEFAULT_PORT = 8765


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opusclip dashboard", description=__doc__)
    p.add_argument("--database", default=None,
                   help="database URL (default: OPUSCLIP_DATABASE_URL or the work folder's SQLite)")
    p.add_argument("--redis", default=None,
                   help="Redis URL: take live updates from Redis pub/sub (the workers must "
                        "publish there); default LISTEN/NOTIFY on PostgreSQL, else polling")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--poll-interval-s", type=float, default=0.05,
                   help="how often polling reads job_events (SQLite, MariaDB)")
    p.add_argument("--push-only", action="store_true",
                   help="with LISTEN/NOTIFY or Redis, do not also poll job_events (then only "
                        "changes that workers publish arrive live; the rest with snapshots)")
    p.add_argument("--refresh-s", type=float, default=2.0,
                   help="a fresh snapshot at least this often, updates or not")
    p.add_argument("--window-s", type=float, default=DEFAULTS.window_s,
                   help="how far back throughput and failure groups look")
    p.add_argument("--stale-after-s", type=float, default=DEFAULTS.stale_after_s,
                   help="a running job silent this long is shown as stuck")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    app = build_app(args.database or config.database_url(), redis_url=args.redis,
                    poll_interval_s=args.poll_interval_s, refresh_s=args.refresh_s,
                    follow_events=not args.push_only,
                    settings=BoardSettings(window_s=args.window_s,
                                           stale_after_s=args.stale_after_s))
    print(f"opusclip dashboard on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=2)
    return 0
