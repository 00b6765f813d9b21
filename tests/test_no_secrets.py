"""No API key may land in a cassette or a notebook output.

The patterns are the shapes of real keys (OpenAI ``sk-...``, Google ``AIza...``, ElevenLabs and
Stability keys in their headers) plus any ``Authorization``/``key=`` value that is not the
placeholder our cassette filters write.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opusclip_lib.config import PROJECT_ROOT

KEY_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),
    re.compile(r"AIza[0-9A-Za-z_-]{30,}"),
    re.compile(r"xi-api-key['\":\s-]+(?!REDACTED)[^\s<'\"\]]{8,}", re.IGNORECASE),
    re.compile(r"Bearer\s+(?!REDACTED)[A-Za-z0-9._-]{12,}"),
    re.compile(r"[?&]key=(?!REDACTED)[A-Za-z0-9_-]{12,}"),
]
SCANNED = [p for folder in ("cassettes", "notebooks") for p in (PROJECT_ROOT / folder).rglob("*")
           if p.is_file() and p.suffix in {".yaml", ".yml", ".json", ".ipynb"}]


def find_secrets(text: str) -> list[str]:
    return [m.group(0)[:24] + "..." for pattern in KEY_PATTERNS for m in pattern.finditer(text)]


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_file_holds_no_api_key(path: Path) -> None:
    assert find_secrets(path.read_text(encoding="utf-8", errors="replace")) == []


@pytest.mark.parametrize("leak", [
    "sk-proj-" + "a1B2" * 8,
    "AIzaSy" + "x9" * 16,
    "xi-api-key: 0123456789abcdef",
    "Authorization: Bearer live0123456789abcdef",
    "https://www.googleapis.com/youtube/v3/videos?id=abc&key=AIzaLiveKey0123456",
])
def test_scanner_catches_key_shapes(leak: str) -> None:
    assert find_secrets(leak)


def test_scanner_accepts_redacted_placeholders() -> None:
    assert find_secrets("Authorization: Bearer REDACTED\n?key=REDACTED\nxi-api-key: REDACTED") == []


CANARY_KEYS = {"YOUTUBE_API_KEY": "AIzaCanary" + "Yt0" * 10,
               "OPENAI_API_KEY": "sk-canary" + "0a" * 16,
               "STABILITY_API_KEY": "canary-stability-7f3a9c2e41d8b6",
               "ELEVENLABS_API_KEY": "canary-eleven-c0ffee1234abcd"}


async def test_logs_at_debug_hold_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A whole job logged at DEBUG (every library's lines, traced) with canary keys in the
    environment, plus lines that quote a key on purpose: no canary may reach the output."""
    import io
    import logging
    from contextlib import AsyncExitStack

    import httpx
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from opusclip_lib.db import connect
    from opusclip_lib.observability import configure_logging, configure_tracing, shutdown_tracing
    from opusclip_lib.sandbox import SandboxConfig, build_app
    from opusclip_lib.sandbox.endpoints import sample_media
    from opusclip_lib.workflow import Services, WorkflowConfig, run_video
    from opusclip_lib.workflow.services import CLIENTS

    for variable, value in CANARY_KEYS.items():
        monkeypatch.setenv(variable, value)
    stream = io.StringIO()
    handler = configure_logging(json_lines=True, level=logging.DEBUG, stream=stream)
    spans = InMemorySpanExporter()
    configure_tracing(spans)
    app = build_app(SandboxConfig.unlimited())
    try:
        async with AsyncExitStack() as stack, connect(f"sqlite:///{tmp_path}/k.db") as db:
            clients = {name: await stack.enter_async_context(
                client(transport=httpx.ASGITransport(app))) for name, client in CLIENTS.items()}
            services = Services(**clients, youtube_media=sample_media)  # offline: no download
            job = await run_video(db, services, "opusSample1",
                                  WorkflowConfig(work_dir=tmp_path / "work", clips=1,
                                                 max_clip_s=1.0, poll_s=0.05))
        log = logging.getLogger("opusclip_lib.canary")
        log.debug("key %s", CANARY_KEYS["OPENAI_API_KEY"],
                  extra={"api_key": CANARY_KEYS["STABILITY_API_KEY"],
                         "header": f"xi-api-key: {CANARY_KEYS['ELEVENLABS_API_KEY']}",
                         "url": f"https://www.googleapis.com/youtube/v3/videos?key="
                                f"{CANARY_KEYS['YOUTUBE_API_KEY']}"})
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        shutdown_tracing()
    text = stream.getvalue()
    traced = repr([dict(span.attributes or {}) for span in spans.get_finished_spans()])
    assert job.status == "completed"
    assert text.count("\n") > 50  # the job really logged at DEBUG
    for value in CANARY_KEYS.values():
        assert value not in text
        assert value not in traced
