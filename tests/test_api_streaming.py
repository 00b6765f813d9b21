"""Streamed chat completions: SSE decoding, usage, structured streams, cancellation, faults.

Streams go through the served sandbox on loopback: in process, ``httpx.ASGITransport`` buffers
the whole body, so nothing could stall or be cut in the middle. Timings are never asserted; a
generous ``asyncio.timeout`` only turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import psutil
import pytest
from pydantic import BaseModel

from opusclip_lib.api import (
    AuthenticationError,
    OpenAIClient,
    ServerError,
    SSEDecoder,
    SSEError,
    StreamInterruptedError,
    StreamProtocolError,
    StreamTimeoutError,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import Resilience, RetryPolicy
from opusclip_lib.sandbox import Latency, SandboxConfig, SandboxURLs

MESSAGES = [{"role": "user", "content": "Explain backpressure in asyncio streams"}]
HANG_GUARD_S = 20


class Pick(BaseModel):
    title: str
    score: int


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig.unlimited()


def connections_to(urls: SandboxURLs) -> list[object]:
    port = int(urls.root.rsplit(":", 1)[1])
    return [c for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED]


# --- the SSE decoder --------------------------------------------------------------------------

STREAM = (b": keep-alive\r\n\r\ndata: {\"a\": 1}\r\n\r\nevent: note\ndata: two\ndata: lines\n\n"
          b"id: 7\nretry: 1500\ndata: [DONE]\n\n")


def test_sse_events_do_not_depend_on_where_the_network_cuts_the_bytes():
    whole = SSEDecoder().feed(STREAM)
    for cut in range(1, len(STREAM)):
        decoder = SSEDecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == whole, cut


def test_sse_lines_may_end_in_a_lone_cr_even_split_from_the_next_line():
    stream = b"data: one\r\rdata: two\r\r"
    for cut in range(1, len(stream)):
        decoder = SSEDecoder()
        events = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) + decoder.end()
        assert [e.data for e in events] == ["one", "two"], cut


def test_sse_decoder_reads_fields_comments_and_multiline_data():
    events = SSEDecoder().feed(STREAM)
    assert [(e.event, e.data) for e in events] == [
        ("message", '{"a": 1}'), ("note", "two\nlines"), ("message", "[DONE]")]
    assert (events[-1].id, events[-1].retry_ms) == ("7", 1500)


@pytest.mark.parametrize("bad", [b"dtaa: {}\n\n", b"data: \xff\n\n"])
def test_a_malformed_sse_line_is_an_error_naming_the_line(bad):
    with pytest.raises(SSEError, match="line 2"):
        SSEDecoder().feed(b": hello\n" + bad)


def test_a_line_that_never_ends_cannot_fill_the_memory():
    decoder = SSEDecoder(max_line_bytes=64)
    with pytest.raises(SSEError, match="longer than 64 bytes"):
        for _ in range(10):
            decoder.feed(b"data: " + b"x" * 20)


# --- streaming against the served sandbox -----------------------------------------------------

async def test_a_stream_adds_up_to_the_unstreamed_answer(served):
    recorder = Recorder()
    async with OpenAIClient("sk-test", base_url=served.openai, recorder=recorder) as ai:
        whole = await ai.chat(MESSAGES)
        async with ai.stream_chat(MESSAGES) as stream:
            pieces = [chunk.content async for chunk in stream]
    assert "".join(pieces) == whole.text
    assert stream.finish_reason == "stop"
    assert stream.usage is not None
    assert stream.usage.completion_tokens == whole.usage.completion_tokens
    event = recorder.events("http")[-1]
    assert event.name == "openai.chat.completions.stream"
    assert event.labels["stream_tokens"] == sum(1 for piece in pieces if piece)
    assert event.labels["ttft_s"] is not None


async def test_without_include_usage_no_usage_chunk_comes(served):
    async with (OpenAIClient("sk-test", base_url=served.openai) as ai,
                ai.stream_chat(MESSAGES, include_usage=False) as stream):
        chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    assert stream.usage is None


async def test_a_structured_stream_is_valid_json_once_finished(served):
    async with (OpenAIClient("sk-test", base_url=served.openai) as ai,
                ai.stream_structured(MESSAGES, Pick) as stream):
        partial = [stream.text async for _ in stream]
    assert any(_not_json(text) for text in partial)  # JSON only at the end, not on the way
    assert json.loads(stream.text) == stream.output().model_dump()


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


async def test_breaking_out_closes_the_connection_and_leaks_no_task(served, config):
    config.openai.token_latency = Latency.fixed(50)  # seconds of answer left when we leave
    async with OpenAIClient("sk-test", base_url=served.openai) as ai:
        tasks_before = asyncio.all_tasks()
        async with ai.stream_chat(MESSAGES) as stream:
            async for chunk in stream:
                if chunk.content:
                    break
        assert ai.streams_open == 0
        await asyncio.sleep(0)  # asyncio closes a socket one loop turn after transport.close()
        assert connections_to(served) == []
        assert asyncio.all_tasks() == tasks_before
    tracker = served.sandbox.openai.streams
    assert await asyncio.to_thread(tracker.wait_idle, HANG_GUARD_S)
    assert tracker.disconnected == 1


async def test_a_cut_stream_says_how_much_arrived(served, config):
    config.inject("openai.chat.completions", "cut", after_chunks=5)
    async with OpenAIClient("sk-test", base_url=served.openai) as ai:
        with pytest.raises(StreamInterruptedError, match="connection broke") as caught:
            async with asyncio.timeout(HANG_GUARD_S), ai.stream_chat(MESSAGES) as stream:
                await stream.until_done()
    assert caught.value.received_events == 5  # role chunk + 4 tokens, then the cut
    assert caught.value.partial_text == stream.text
    assert caught.value.received_bytes > 0


async def test_a_cut_after_the_first_byte_is_not_retried(served, config):
    config.inject("openai.chat.completions", "cut", after_chunks=2)
    policy = Resilience("openai",
                        retry=RetryPolicy(max_retries=3, sleep=lambda s: asyncio.sleep(0)))
    async with OpenAIClient("sk-test", base_url=served.openai, resilience=policy) as ai:
        with pytest.raises(StreamInterruptedError):
            async with ai.stream_chat(MESSAGES) as stream:
                await stream.until_done()
    assert served.sandbox.openai.streams.opened == 1


async def test_an_error_before_the_first_byte_is_retried(served, config):
    config.inject("openai.chat.completions", "server_error", times=2)
    policy = Resilience("openai",
                        retry=RetryPolicy(max_retries=3, sleep=lambda s: asyncio.sleep(0)))
    async with (OpenAIClient("sk-test", base_url=served.openai, resilience=policy) as ai,
                ai.stream_chat(MESSAGES) as stream):
        text = await stream.until_done()
    assert text
    assert ai.usage.calls == 3


async def test_a_stall_longer_than_the_chunk_timeout_raises_a_timeout(served, config):
    config.inject("openai.chat.completions", "stall", after_chunks=3, hang_s=60)
    async with OpenAIClient("sk-test", base_url=served.openai) as ai:
        with pytest.raises(StreamTimeoutError, match="stalled") as caught:
            async with asyncio.timeout(HANG_GUARD_S), ai.stream_chat(
                    MESSAGES, chunk_timeout_s=0.2) as stream:
                await stream.until_done()
    assert caught.value.received_events == 3


async def test_an_error_status_is_the_typed_error_before_any_chunk(served):
    async with OpenAIClient("invalid-key", base_url=served.openai) as ai:
        with pytest.raises(AuthenticationError):
            async with ai.stream_chat(MESSAGES):
                pass


def sse_transport(body: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body))


CHUNK = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": "hi"}}]}).encode()


@pytest.mark.parametrize("body", [
    b"data: " + CHUNK + b"\n\nnonsense\n\n",
    b"data: " + CHUNK + b"\n\ndata: {not json\n\n",
    b"data: " + CHUNK + b"\n\ndata: {\"id\": 1}\n\n",
])
async def test_a_malformed_stream_is_a_typed_error_not_a_hang(body):
    async with OpenAIClient("sk-test", transport=sse_transport(body)) as ai:
        with pytest.raises(StreamProtocolError):
            async with asyncio.timeout(HANG_GUARD_S), ai.stream_chat(MESSAGES) as stream:
                await stream.until_done()


async def test_an_error_event_after_the_200_is_the_typed_error():
    error = json.dumps({"error": {"message": "overloaded", "type": "server_error",
                                  "code": "server_error"}}).encode()
    body = b"data: " + CHUNK + b"\n\ndata: " + error + b"\n\n"
    async with OpenAIClient("sk-test", transport=sse_transport(body)) as ai:
        with pytest.raises(ServerError, match="overloaded"):
            async with ai.stream_chat(MESSAGES) as stream:
                await stream.until_done()
    assert stream.text == "hi"


async def test_a_last_event_ended_by_a_lone_cr_still_counts():
    body = b"data: " + CHUNK + b"\r\rdata: [DONE]\r\r"
    async with (OpenAIClient("sk-test", transport=sse_transport(body)) as ai,
                ai.stream_chat(MESSAGES) as stream):
        text = await stream.until_done()
    assert text == "hi"


async def test_a_stream_without_done_is_interrupted():
    async with OpenAIClient("sk-test", transport=sse_transport(b"data: " + CHUNK + b"\n\n")) as ai:
        with pytest.raises(StreamInterruptedError, match="before \\[DONE\\]"):
            async with ai.stream_chat(MESSAGES) as stream:
                await stream.until_done()
    assert stream.text == "hi"
