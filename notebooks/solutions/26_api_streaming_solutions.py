"""Solutions to the exercises of notebooks/26_api_streaming.ipynb.

Run: .venv/bin/python notebooks/solutions/26_api_streaming_solutions.py
Offline, against the sandbox served on loopback. Takes a few seconds.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

from PIL import Image

from opusclip_lib.api import GenerationPendingError, OpenAIClient, PollPolicy, StabilityClient
from opusclip_lib.sandbox import SANDBOX_KEY, Latency, SandboxConfig, SandboxURLs, serve

MESSAGES = [{"role": "user", "content": "Why do streamed answers feel faster?"}]


async def first_sentence(ai: OpenAIClient, messages: list[dict[str, Any]]) -> str:
    """Exercise 1: stream until the first full stop, then leave (the block closes the socket)."""
    async with ai.stream_chat(messages) as stream:
        async for chunk in stream:
            if "." in chunk.content:
                break
    text = stream.text
    return text[: text.index(".") + 1] if "." in text else text


async def answer_within(ai: OpenAIClient, messages: list[dict[str, Any]],
                        seconds: float) -> tuple[str, bool]:
    """Exercise 2: a deadline for the whole answer; what arrived in time, and whether it all
    did. The chunk timeout would only catch a silent stream, not a slow one."""
    async with ai.stream_chat(messages) as stream:
        try:
            async with asyncio.timeout(seconds):
                await stream.until_done()
        except TimeoutError:
            return stream.text, False
    return stream.text, True


async def backpressure(ai: OpenAIClient, maxsize: int,
                       consumer_delay_s: float) -> dict[str, Any]:
    """Exercise 3: one stream through a queue of ``maxsize`` (0: unbounded) to a slow consumer."""
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize)
    deepest = 0

    async def produce() -> None:
        nonlocal deepest
        async with ai.stream_chat(MESSAGES) as stream:
            async for chunk in stream:
                if chunk.content:
                    await queue.put(chunk.content)
                    deepest = max(deepest, queue.qsize())
        await queue.put(None)

    async def consume() -> int:
        taken = 0
        while await queue.get() is not None:
            await asyncio.sleep(consumer_delay_s)
            taken += 1
        return taken

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        group.create_task(produce())
        consumer = group.create_task(consume())
    return {"maxsize": maxsize or "unbounded", "deepest": deepest, "tokens": consumer.result(),
            "seconds": round(time.perf_counter() - started, 2)}


async def resume_later(sd: StabilityClient, image: bytes) -> tuple[str, bytes]:
    """Exercise 4: a deadline too short, the id kept from the error, the image collected later."""
    try:
        await sd.upscale_creative(image, "sharper", poll_policy=PollPolicy(
            first_delay_s=0.1, deadline_s=0.2))
    except GenerationPendingError as pending:
        generation_id = pending.generation_id
    else:
        raise AssertionError("the job should still have been running at the deadline")
    finished = await sd.resume(generation_id, poll_policy=PollPolicy(
        first_delay_s=0.1, max_delay_s=0.5, deadline_s=20))
    return generation_id, finished.image


async def run(urls: SandboxURLs, config: SandboxConfig) -> None:
    tracker = urls.sandbox.openai.streams
    async with OpenAIClient(SANDBOX_KEY, base_url=urls.openai) as ai:
        config.openai.token_latency = Latency.fixed(50)  # a long tail, so leaving is early
        left_before = tracker.disconnected
        sentence = await first_sentence(ai, MESSAGES)
        assert await asyncio.to_thread(tracker.wait_idle, 10)
        assert sentence.endswith(".")
        assert tracker.disconnected == left_before + 1
        print(f"1. first sentence: {sentence!r} (the server saw the client leave)")
        config.openai.token_latency = Latency.fixed(15)

        partial, finished = await answer_within(ai, MESSAGES, 0.25)
        whole, complete = await answer_within(ai, MESSAGES, 30)
        assert not finished
        assert complete
        assert whole.startswith(partial)
        print(f"2. within 0.25 s: {len(partial)} of {len(whole)} characters")

        consumer_delay_s = 3 * 0.015  # three times the stream's 15 ms a token
        rows = [await backpressure(ai, size, consumer_delay_s) for size in (1, 4, 16, 0)]
        assert all(row["deepest"] <= row["maxsize"] for row in rows[:3])
        print("3. backpressure:", rows)

    config.stability.job_s = 0.6
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 90)).save(picture, format="PNG")
    jobs = urls.sandbox.stability.jobs
    async with StabilityClient(SANDBOX_KEY, base_url=urls.stability) as sd:
        generation_id, image = await resume_later(sd, picture.getvalue())
    assert jobs.starts == 1
    assert jobs.deliveries[generation_id] == 1
    print(f"4. resumed {generation_id[:12]}...: {len(image)} bytes, one job started")


async def main() -> None:
    config = SandboxConfig.unlimited()
    config.set_latency("openai.chat.completions", 100)
    config.openai.token_latency = Latency.fixed(15)
    async with serve(config) as urls:
        await run(urls, config)


if __name__ == "__main__":
    asyncio.run(main())
