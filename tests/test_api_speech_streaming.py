"""ElevenLabs speech as it is made: the chunked ``/stream`` to a file, and the WebSocket.

Against the served sandbox on loopback (WebSockets and mid-stream faults need a real server).
"""

from __future__ import annotations

import asyncio

import psutil
import pytest

from opusclip_lib.api import (
    ElevenLabsClient,
    StreamInterruptedError,
    StreamTimeoutError,
    WebSocketClosedError,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.sandbox import SandboxConfig, SandboxURLs, serve

RACHEL = "21m00Tcm4TlvDq8ikWAM"
TEXT = "Streams start playing before the whole answer exists. That is the point of them."
WORDS = [word + " " for word in TEXT.split()]
HANG_GUARD_S = 20


@pytest.fixture
def config() -> SandboxConfig:
    config = SandboxConfig.unlimited()
    config.elevenlabs.chunk_bytes = 512
    return config


def open_connections(urls: SandboxURLs) -> int:
    port = int(urls.root.rsplit(":", 1)[1])
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


async def test_streamed_speech_lands_in_the_file_whole(served, tmp_path):
    recorder = Recorder()
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs, recorder=recorder) as tts:
        whole = await tts.text_to_speech(TEXT, RACHEL)
        written = await tts.stream_speech_to_file(TEXT, RACHEL, tmp_path / "voice.mp3")
    assert (tmp_path / "voice.mp3").read_bytes() == whole.audio
    assert written.bytes == len(whole.audio)
    assert written.character_cost == len(TEXT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.mp3"]
    event = recorder.events("http")[-1]
    assert event.name == "elevenlabs.text_to_speech.stream"
    assert event.labels["ttfb_s"] is not None


async def test_a_cut_stream_leaves_no_file_and_says_how_much_came(served, config, tmp_path):
    config.inject("elevenlabs.text_to_speech.stream", "cut", after_chunks=3)
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs) as tts:
        with pytest.raises(StreamInterruptedError, match="byte") as caught:
            async with asyncio.timeout(HANG_GUARD_S):
                await tts.stream_speech_to_file(TEXT, RACHEL, tmp_path / "voice.mp3")
    assert caught.value.received_bytes > 0
    assert list(tmp_path.iterdir()) == []


async def test_a_stalled_audio_stream_times_out_between_chunks(served, config):
    config.inject("elevenlabs.text_to_speech.stream", "stall", after_chunks=2, hang_s=60)
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs) as tts:
        with pytest.raises(StreamTimeoutError):
            async with asyncio.timeout(HANG_GUARD_S), tts.stream_speech(
                    TEXT, RACHEL, chunk_timeout_s=0.2) as audio:
                async for _ in audio:
                    pass


async def test_leaving_an_audio_stream_early_closes_its_connection(served):
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs) as tts:
        tasks_before = asyncio.all_tasks()
        async with tts.stream_speech(TEXT, RACHEL) as audio:
            async for _ in audio:
                break
        await asyncio.sleep(0)  # asyncio closes a socket one loop turn after transport.close()
        assert open_connections(served) == 0
        assert asyncio.all_tasks() == tasks_before
    assert await asyncio.to_thread(served.sandbox.elevenlabs.streams.wait_idle, HANG_GUARD_S)


async def test_the_websocket_turns_text_pieces_into_audio_with_timing(served):
    async with (ElevenLabsClient("xi-test", base_url=served.elevenlabs,
                                 output_format="pcm_16000") as tts,
                tts.speech_socket(RACHEL) as speech):
        async def feed() -> None:
            for word in WORDS:
                await speech.send(word)
            await speech.finish()

        async with asyncio.TaskGroup() as group:
            group.create_task(feed())
            chunks = [chunk async for chunk in speech]
    assert len(chunks) >= 2  # a sentence end started speech before the text was finished
    spoken = "".join("".join(chunk.alignment.chars) for chunk in chunks if chunk.alignment)
    assert spoken == "".join(WORDS)
    for chunk in chunks:  # 16-bit mono at 16 kHz: the alignment spans the chunk's audio
        assert chunk.alignment is not None
        end_ms = chunk.alignment.char_start_times_ms[-1] + chunk.alignment.chars_durations_ms[-1]
        assert abs(end_ms - len(chunk.audio) / 32) <= 1
    assert tts.usage.spent["characters"] == len("".join(WORDS))


async def test_leaving_the_websocket_early_closes_it_and_leaks_no_task(served):
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs,
                                output_format="pcm_16000") as tts:
        tasks_before = asyncio.all_tasks()
        async with tts.speech_socket(RACHEL) as speech:
            for word in WORDS:
                await speech.send(word, flush=True)
            async for _ in speech:
                break  # one audio message is enough
        await asyncio.sleep(0)  # asyncio closes a socket one loop turn after transport.close()
        assert tts.streams_open == 0
        assert open_connections(served) == 0
        assert asyncio.all_tasks() == tasks_before
    assert await asyncio.to_thread(served.sandbox.elevenlabs.streams.wait_idle, HANG_GUARD_S)


async def test_a_rejected_key_closes_the_websocket_with_a_typed_error():
    async with (serve(SandboxConfig.unlimited()) as urls,
                ElevenLabsClient("invalid-key", base_url=urls.elevenlabs) as tts):
        with pytest.raises(WebSocketClosedError, match="invalid_api_key") as caught:
            async with asyncio.timeout(HANG_GUARD_S), tts.speech_socket(RACHEL) as speech:
                await speech.send("Hello ")
                await speech.finish()
                async for _ in speech:
                    pass
    assert caught.value.close_code == 1008
    assert not caught.value.retryable


@pytest.mark.parametrize(("kind", "after"), [("server_error", 0), ("cut", 1)])
async def test_a_server_side_failure_closes_with_1011(served, config, kind, after):
    config.inject("elevenlabs.text_to_speech.websocket", kind, after_chunks=after)
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs,
                                output_format="pcm_16000") as tts:
        with pytest.raises(WebSocketClosedError) as caught:
            async with asyncio.timeout(HANG_GUARD_S), tts.speech_socket(RACHEL) as speech:
                for word in WORDS:
                    await speech.send(word, flush=True)
                await speech.finish()
                async for _ in speech:
                    pass
    assert caught.value.close_code == 1011
    assert caught.value.retryable


async def test_a_stalled_websocket_times_out(served, config):
    config.inject("elevenlabs.text_to_speech.websocket", "stall", after_chunks=1, hang_s=60)
    async with ElevenLabsClient("xi-test", base_url=served.elevenlabs,
                                output_format="pcm_16000") as tts:
        with pytest.raises(StreamTimeoutError):
            async with asyncio.timeout(HANG_GUARD_S), tts.speech_socket(
                    RACHEL, chunk_timeout_s=0.3) as speech:
                for word in WORDS:
                    await speech.send(word, flush=True)
                await speech.finish()
                async for _ in speech:
                    pass
        assert tts.streams_open == 0
