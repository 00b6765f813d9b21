"""``opusclip dashboard``: a live web page of the job queue, for whoever runs the workers.

::

    opusclip dashboard --database postgresql://.../opusclip --port 8765   # then open the URL

The page shows jobs by state, throughput per worker, the oldest queued job, recent failures
(stage and reason) with their groups, and alerts (the in-process rules plus stuck jobs: running
with no live lease). It updates over a WebSocket fed by LISTEN/NOTIFY (PostgreSQL), Redis
pub/sub (``--redis``) or polling ``job_events`` (SQLite, MariaDB), reconnects after a server
restart and resyncs from a snapshot. ``/metrics`` serves the same figures to Prometheus.

Tooling, like the sandbox: the core never imports it (``lint-imports`` checks), and it needs
the ``[dashboard]`` extra (starlette, uvicorn, websockets).
"""
