"""Observability end to end: a job's logs carry its context, its trace has the expected tree,
its metrics scrape and parse, its failures group by fingerprint and raise alerts."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from opusclip_lib.config import PROJECT_ROOT
from opusclip_lib.db import Database, connect, jobs
from opusclip_lib.db import failures as failure_rows
from opusclip_lib.observability import (
    Metrics,
    MetricsRecorder,
    bound,
    configure_logging,
    configure_tracing,
    current,
    metrics_server,
    monitor_loop_lag,
    shutdown_tracing,
    slow_callbacks,
    span_rows,
)
from opusclip_lib.observability.alerts import AlertRules, evaluate, publish
from opusclip_lib.observability.instrument import JobScope, http_end, http_start, traced_job
from opusclip_lib.observability.logging import MAX_MESSAGE_CHARS, REDACTED
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import (
    NAIVE,
    STAGE_NAMES,
    UNLIMITED,
    WorkflowConfig,
    open_services,
    run_video,
)
from tests.conftest import overdue_job

TINY = {"max_clip_s": 2.0, "clips": 2, "heartbeat_s": 0.2, "poll_s": 0.05}
JOB_FIELDS = ("job_id", "video_id", "stage", "attempt")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(exporter)
    yield exporter
    shutdown_tracing()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(json_lines=True, level=logging.DEBUG, stream=stream,
                                logger="opusclip_lib")
    yield stream
    logging.getLogger("opusclip_lib").removeHandler(handler)
    logging.getLogger("opusclip_lib").setLevel(logging.NOTSET)


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(f"sqlite:///{tmp_path}/observe.db") as database:
        yield database


async def one_job(db: Database, tmp_path: Path, sandbox: SandboxConfig | None = None, *,
                  recorder: MetricsRecorder | None = None, **options: object) -> jobs.Job:
    config = WorkflowConfig(work_dir=tmp_path / "work", **(TINY | options))  # type: ignore[arg-type]
    endpoints = sandbox_endpoints(build_app(sandbox or SandboxConfig.unlimited()))
    async with open_services(endpoints, limits=UNLIMITED, cached=False,
                             recorder=recorder) as services:
        return await run_video(db, services, "opusSample1", config, recorder=recorder)


# --- logs -------------------------------------------------------------------------------------

async def test_context_reaches_taskgroup_and_gather_children(log_lines: io.StringIO) -> None:
    logger = logging.getLogger("opusclip_lib.test")

    async def child(n: int) -> None:
        await asyncio.sleep(0)
        logger.info("child %s", n)

    with bound(job_id=7, video_id=3, stage="render", attempt=2):
        async with asyncio.TaskGroup() as group:
            group.create_task(child(1))
        await asyncio.gather(child(2))
    logger.info("outside")
    lines = parsed(log_lines)
    assert [line.get("job_id") for line in lines] == [7, 7, None]
    assert lines[1]["stage"] == "render"


async def test_every_line_inside_a_failing_job_carries_its_context(
        db: Database, tmp_path: Path, log_lines: io.StringIO) -> None:
    sandbox = SandboxConfig.unlimited()
    sandbox.inject("openai.chat.completions", "server_error")
    job = await one_job(db, tmp_path, sandbox, max_attempts=1, render=False)
    assert job.status == "failed"
    inside = [line for line in parsed(log_lines) if line["logger"].startswith(
        "opusclip_lib.workflow") or line["logger"].startswith("opusclip_lib.observability")]
    assert inside
    for line in inside:
        assert {name: line.get(name) for name in ("job_id", "video_id", "attempt")} == {
            "job_id": job.id, "video_id": job.video_id, "attempt": 1}
    failure = next(line for line in inside if line["event"].startswith("failure recorded"))
    assert (failure["stage"], failure["provider"]) == ("analyze", "openai")


@pytest.mark.parametrize(("status", "logged_code"), [("completed", None),
                                                     ("pending", "database_unavailable")])
async def test_the_job_line_names_the_error_only_when_the_job_did_not_complete(
        log_lines: io.StringIO, status: str, logged_code: str | None) -> None:
    """A row keeps its last error code after a retry succeeds: "job completed" must not show it."""
    row = SimpleNamespace(id=1, video_id=2, attempts=2, stage=None, payload={}, status=status,
                          error_code="database_unavailable")

    async def process(engine: object, job: SimpleNamespace) -> SimpleNamespace:
        return job

    await traced_job(process)(object(), row)
    [line] = [line for line in parsed(log_lines) if line["event"] == f"job {status}"]
    assert line.get("error_code") == logged_code


def test_a_job_scope_makes_its_span_current_and_ends_it_with_the_jobs_exception(
        spans: InMemorySpanExporter) -> None:
    row = SimpleNamespace(id=4, video_id=5, attempts=1, stage="analyze", payload={})
    with pytest.raises(ValueError, match="bad moment"), JobScope(row) as span:
        assert span is not None
        assert trace.get_current_span() is span
        assert current()["job_id"] == 4
        raise ValueError("bad moment")
    assert dict(current()) == {}
    assert not trace.get_current_span().is_recording()
    [row_span] = span_rows(list(spans.get_finished_spans()))
    assert (row_span["name"], row_span["status"], row_span["exception"]) == (
        "job 4", "ERROR", "ValueError")


async def test_lines_logged_during_an_api_call_carry_its_provider(
        log_lines: io.StringIO) -> None:
    logger = logging.getLogger("opusclip_lib.test")
    url = SimpleNamespace(scheme="https", host="api.example", port=None, path="/v1/chat")
    with bound(job_id=9, stage="analyze"):
        call = http_start("openai", "chat", "POST", url)
        await asyncio.sleep(0)
        logger.info("retrying")
        http_end(call, 200, "req-1", None)
        logger.info("answered")
    assert [(line.get("job_id"), line.get("provider")) for line in parsed(log_lines)] == [
        (9, "openai"), (9, None)]


def test_readable_lines_show_the_fields() -> None:
    stream = io.StringIO()
    handler = configure_logging(stream=stream, logger="opusclip_lib.readable")
    try:
        with bound(job_id=1, stage="download"):
            logging.getLogger("opusclip_lib.readable").warning("slow")
    finally:
        logging.getLogger("opusclip_lib.readable").removeHandler(handler)
    assert stream.getvalue().rstrip().endswith("readable: slow  job_id=1  stage=download")


def test_secret_fields_are_redacted(log_lines: io.StringIO) -> None:
    logging.getLogger("opusclip_lib.test").info(
        "calling with Bearer live0123456789abcdef", extra={"api_key": "hunter2-secret",
                                                           "url": "https://x/v?key=AIzaSecret1"})
    [line] = parsed(log_lines)
    assert line["api_key"] == REDACTED
    assert line["url"] == f"https://x/v?key={REDACTED}"
    assert line["event"] == f"calling with Bearer {REDACTED}"


def test_a_megabyte_line_is_truncated_and_says_so(log_lines: io.StringIO) -> None:
    logging.getLogger("opusclip_lib.test").info("x" * 2**20)
    [line] = parsed(log_lines)
    assert len(line["event"]) < MAX_MESSAGE_CHARS + 100
    assert line["event"].endswith(f"[truncated: {2**20 - MAX_MESSAGE_CHARS} more characters]")


# --- traces -----------------------------------------------------------------------------------

async def test_one_job_has_the_expected_trace_tree(db: Database, tmp_path: Path,
                                                   spans: InMemorySpanExporter) -> None:
    job = await one_job(db, tmp_path)
    assert job.status == "completed"
    finished = spans.get_finished_spans()
    rows = {row["span_id"]: row for row in span_rows(list(finished))}
    [root] = [row for row in rows.values() if row["name"] == f"job {job.id}"]
    assert root["parent_id"] is None
    stages = [row for row in rows.values() if row["parent_id"] == root["span_id"]
              and row["name"].startswith("stage ")]
    in_turn = [row for row in stages if not row["name"].endswith(" (early)")]
    assert [row["name"] for row in sorted(in_turn, key=lambda r: r["start_s"])] == [
        f"stage {name}" for name in STAGE_NAMES]
    by_stage = {row["name"]: row for row in stages}
    children = {name: {row["name"] for row in rows.values() if row["parent_id"] == stage["span_id"]}
                for name, stage in by_stage.items()}
    render = by_stage["stage render"]
    for name in ("thumbnail", "voiceover"):  # their API calls run beside the render
        early = by_stage[f"stage {name} (early)"]
        assert early["start_s"] < render["start_s"] + render["seconds"]
        assert by_stage[f"stage {name}"]["start_s"] >= render["start_s"] + render["seconds"]
    assert "POST stability.generate" in children["stage thumbnail (early)"]
    assert "GET youtube.videos.list" in children["stage metadata"]
    assert "POST openai.chat.completions" in children["stage analyze"]
    assert "ffmpeg" in children["stage render"]
    assert "COMMIT" in children["stage analyze"]
    assert {row["trace_id"] for row in rows.values()} == {root["trace_id"]}


async def test_spans_carry_the_semantic_convention_attributes(
        db: Database, tmp_path: Path, spans: InMemorySpanExporter) -> None:
    await one_job(db, tmp_path, render=False)
    finished = spans.get_finished_spans()
    http = next(s for s in finished if s.name == "GET youtube.videos.list")
    assert http.kind is SpanKind.CLIENT
    assert (http.attributes["http.request.method"], http.attributes["server.address"],
            http.attributes["http.response.status_code"]) == ("GET", "www.googleapis.com", 200)
    assert "?" not in str(http.attributes["url.full"])  # the query may hold the key
    query = next(s for s in finished if s.name == "job event")
    assert (query.attributes["db.system.name"], query.attributes["db.operation.name"]) == (
        "sqlite", "INSERT")
    assert str(query.attributes["db.query.text"]).startswith("INSERT INTO job_events (job_id,")


async def test_a_failed_stage_span_carries_the_exception(db: Database, tmp_path: Path,
                                                         spans: InMemorySpanExporter) -> None:
    sandbox = SandboxConfig.unlimited()
    sandbox.inject("openai.chat.completions", "server_error")
    job = await one_job(db, tmp_path, sandbox, max_attempts=1, render=False)
    assert job.status == "failed"
    [stage] = [s for s in spans.get_finished_spans() if s.name == "stage analyze"]
    assert stage.status.status_code.name == "ERROR"
    [event] = [e for e in stage.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith("ServerError")
    [root] = [s for s in spans.get_finished_spans() if s.name == f"job {job.id}"]
    assert root.status.status_code.name == "ERROR"


async def test_a_job_enqueued_inside_a_trace_continues_it(db: Database, tmp_path: Path,
                                                          spans: InMemorySpanExporter) -> None:
    from opusclip_lib.observability.tracing import state

    assert state.tracer is not None
    with state.tracer.start_as_current_span("request") as request:
        job = await one_job(db, tmp_path, render=False)
    assert job.payload["traceparent"].split("-")[1] == f"{request.get_span_context().trace_id:032x}"
    [root] = [s for s in spans.get_finished_spans() if s.name == f"job {job.id}"]
    assert root.parent is not None
    assert root.parent.span_id == request.get_span_context().span_id


def test_an_unreachable_otlp_endpoint_warns_and_work_goes_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="opusclip_lib.observability.tracing"):
        provider = configure_tracing()
    try:
        assert provider is not None
        assert "does not answer" in caplog.text
    finally:
        shutdown_tracing()


# --- metrics ----------------------------------------------------------------------------------

def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {family.name: [(sample.labels, sample.value) for sample in family.samples]
            for family in text_string_to_metric_families(text)}


async def test_metrics_endpoint_serves_what_a_job_did(db: Database, tmp_path: Path) -> None:
    metrics = Metrics()
    recorder = MetricsRecorder(metrics)
    db.recorder = recorder
    async with monitor_loop_lag(0.01, metrics.loop_lag.observe):
        job = await one_job(db, tmp_path, recorder=recorder, render=False)
    assert job.status == "completed"
    with metrics_server(metrics, 0) as port:
        assert port is not None
        families = await asyncio.to_thread(scrape, port)
    stages = {labels["stage"] for labels, _ in families["opusclip_stage_seconds"]
              if "stage" in labels}
    assert stages == set(STAGE_NAMES) - {"render"}
    api = {(labels["provider"], labels["status"]) for labels, _ in
           families["opusclip_api_request_seconds"] if "provider" in labels}
    assert ("openai", "200") in api
    assert any(value > 0 for labels, value in families["opusclip_db_query_seconds"]
               if labels.get("query") == "claim jobs")
    assert any(value > 0 for _, value in families["opusclip_event_loop_lag_seconds"])


def test_repeated_events_count_in_one_series_per_label_values() -> None:
    recorder = MetricsRecorder(Metrics())
    for status in (200, 200, 503, None):
        recorder.add("http", "youtube.videos.list", seconds=0.01, ok=status == 200,
                     provider="youtube", status=status)
    recorder.add("cache", "youtube", hit=True)
    recorder.add("cache", "youtube", hit=True)
    families = {family.name: family for family in text_string_to_metric_families(
        generate_latest(recorder.metrics.registry).decode())}
    counts = {sample.labels["status"]: sample.value
              for sample in families["opusclip_api_request_seconds"].samples
              if sample.name.endswith("_count")}
    assert counts == {"200": 2, "503": 1, "error": 1}
    assert [sample.value for sample in families["opusclip_cache_lookups"].samples
            if sample.name.endswith("_total")] == [2]


def test_a_taken_metrics_port_warns_and_work_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with caplog.at_level(logging.WARNING), metrics_server(
                Metrics(), taken.getsockname()[1]) as port:
            assert port is None
    assert "unavailable" in caplog.text


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    checked = subprocess.run([promtool, "check", "rules", str(PROJECT_ROOT / "alerts.yml")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


# --- loop lag ---------------------------------------------------------------------------------

async def test_lag_monitor_sees_a_blocking_call() -> None:
    async with monitor_loop_lag(0.01) as monitor:
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # noqa: ASYNC251 - the bug under test: the whole loop stops here
        await asyncio.sleep(0.03)
    assert monitor.worst_s >= 0.15


async def test_debug_mode_names_the_blocking_coroutine() -> None:
    async def blocking_culprit() -> None:
        time.sleep(0.15)  # noqa: ASYNC251 - the blocking call the debug mode must name

    with slow_callbacks(0.1) as reports:
        await asyncio.create_task(blocking_culprit())
    assert any("blocking_culprit" in report for report in reports)


# --- error tracking and alerts ----------------------------------------------------------------

async def test_a_storm_groups_into_one_fingerprint_and_raises_an_alert(
        db: Database, tmp_path: Path, log_lines: io.StringIO) -> None:
    sandbox = SandboxConfig.unlimited()
    sandbox.inject("openai.chat.completions", "server_error")
    config = WorkflowConfig(work_dir=tmp_path / "work", mode=NAIVE, max_attempts=1,
                            render=False, **TINY)
    async with open_services(sandbox_endpoints(build_app(sandbox)), limits=UNLIMITED,
                             cached=False) as services:
        failed = [await run_video(db, services, youtube_id, config)
                  for youtube_id in ("opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb")]
    assert {job.status for job in failed} == {"failed"}
    [group] = await failure_rows.failure_groups(db)
    assert (group.exception_type, group.stage, group.provider, group.count) == (
        "ServerError", "analyze", "openai", 3)
    assert group.example_job_id == max(job.id for job in failed)
    alerts = await evaluate(db, AlertRules(min_failures=3, error_rate=0.5))
    assert [alert.name for alert in alerts] == ["error_rate"]
    await publish(db, alerts)
    events = await jobs.job_events(db, group.example_job_id)
    assert events[-1].message.startswith("alert error_rate:")
    assert events[-1].from_status == events[-1].to_status == "failed"
    assert any(line.get("alert") == "error_rate" for line in parsed(log_lines))


def test_context_is_empty_outside_a_job() -> None:
    assert dict(current()) == {}


# --- the worker -------------------------------------------------------------------------------

async def test_worker_sample_sets_queue_gauges(db: Database) -> None:
    from opusclip_lib.observability.sampling import sample_once

    await overdue_job(db, "pipeline", 30)
    metrics = Metrics()
    await sample_once(db, {}, metrics)
    with metrics_server(metrics, 0) as port:
        assert port is not None
        families = await asyncio.to_thread(scrape, port)
    assert families["opusclip_queue_depth"] == [({"status": "pending"}, 1.0)]
    [(_, age)] = families["opusclip_oldest_pending_job_age_seconds"]
    assert age >= 29


def test_worker_with_a_taken_metrics_port_still_works(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "opusclip_lib.workflow.worker", "--database-url",
             f"sqlite:///{tmp_path}/w.db", "--videos", "opusSample1", "--work-dir",
             str(tmp_path / "work"), "--no-render", "--clips", "1", "--max-clip-seconds", "1",
             "--metrics-port", str(taken.getsockname()[1])],
            capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["statuses"] == {"completed": 1}
    warnings = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any("metrics port" in line["event"] for line in warnings)


# --- profiling --------------------------------------------------------------------------------

def busy_checksum(rounds: int) -> int:
    total = 0
    for n in range(rounds):
        total = (total * 31 + n) % 1_000_003
    return total


async def test_profile_names_the_cpu_bound_function() -> None:
    from opusclip_lib.observability.profiling import profiled, top_frames

    async def work() -> int:
        await asyncio.sleep(0.01)
        return busy_checksum(300_000)

    _, profiler = await profiled(work())
    [top] = top_frames(profiler, 1)
    assert top["function"] == "busy_checksum"


# --- a trace across processes -----------------------------------------------------------------

class _Collector(http.server.BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP receiver: keeps each posted body."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.bodies
    server.shutdown()
    server.server_close()
    thread.join()


async def test_a_worker_process_continues_the_trace_of_the_enqueuer_over_otlp(
        tmp_path: Path, spans: InMemorySpanExporter,
        collector: tuple[str, list[bytes]]) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from opusclip_lib.observability.tracing import state
    from opusclip_lib.workflow import Engine

    url = f"sqlite:///{tmp_path}/cross.db"
    assert state.tracer is not None
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited()))
    async with connect(url) as db, open_services(endpoints, limits=UNLIMITED) as services:
        with state.tracer.start_as_current_span("web request") as request:
            [job] = await Engine(db, services, WorkflowConfig(work_dir=tmp_path)).enqueue(
                ["opusSample1"])
    endpoint, bodies = collector
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "opusclip_lib.workflow.worker", "--database-url", url,
         "--videos", "opusSample1", "--work-dir", str(tmp_path / "work"), "--no-render",
         "--clips", "1"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    assert done.returncode == 0, done.stderr
    exported = [span for body in bodies
                for resource in ExportTraceServiceRequest.FromString(body).resource_spans
                for scope in resource.scope_spans for span in scope.spans]
    [root] = [span for span in exported if span.name == f"job {job.id}"]
    context = request.get_span_context()
    assert root.trace_id.hex() == f"{context.trace_id:032x}"
    assert root.parent_span_id.hex() == f"{context.span_id:016x}"
    assert {span.name for span in exported} >= {"stage metadata", "GET youtube.videos.list"}
