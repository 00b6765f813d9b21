"""OpenAI client: completions, strict structured outputs, validation failures, token usage;
then the sandbox end to end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from opusclip_lib.api import (
    AuthenticationError,
    ContentFilteredError,
    MalformedResponseError,
    OpenAIClient,
    RateLimitError,
)
from opusclip_lib.api.models import ChatCompletion, Highlight
from opusclip_lib.metrics import Recorder
from opusclip_lib.sandbox import SandboxConfig, build_app
from tests.api_specs import sample

KEY = "sk-test-0123456789abcdef"


@dataclass(frozen=True)
class Piece:
    start: float
    end: float
    text: str


TRANSCRIPT = [Piece(i * 10.0, i * 10.0 + 9.5, f"Sentence number {i}.") for i in range(12)]


def completion(content: str | None, *, finish: str = "stop", refusal: str | None = None,
               ) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content,
                                     "refusal": refusal}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


def highlight(start: float, end: float, score: float) -> dict[str, Any]:
    return {"start": start, "end": end, "title": "A title", "hook": "Wait for it",
            "virality_score": score}


class FakeOpenAI:
    def __init__(self, body: dict[str, Any], status: int = 200) -> None:
        self.body = body
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body, headers={
            "x-request-id": "req_abc", "x-ratelimit-remaining-requests": "99",
            "x-ratelimit-reset-requests": "12ms"})

    @property
    def sent(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)


def client(fake: FakeOpenAI, **options: Any) -> OpenAIClient:
    return OpenAIClient(KEY, transport=httpx.MockTransport(fake), **options)


async def test_chat_parses_the_documented_sample_and_counts_tokens() -> None:
    fake = FakeOpenAI(sample("openai-chat-completion-default.json"))
    recorder = Recorder()
    async with client(fake, recorder=recorder) as ai:
        answer = await ai.chat([{"role": "user", "content": "Hello"}], temperature=0.2)
    assert isinstance(answer, ChatCompletion)
    assert answer.text == "Hello! How can I assist you today?"
    assert answer.request_id == "req_abc"
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert fake.sent == {"model": "gpt-4o-mini", "temperature": 0.2,
                         "messages": [{"role": "user", "content": "Hello"}]}
    assert ai.usage.spent == {"tokens": 29, "prompt_tokens": 19, "completion_tokens": 10}
    [event] = recorder.events("http")
    assert event.name == "openai.chat.completions"
    assert (event.labels["cost"], event.labels["prompt_tokens"]) == (29, 19)
    assert event.labels["request_id"] == "req_abc"


async def test_pick_highlights_sends_a_strict_schema_and_returns_validated_highlights() -> None:
    picks = {"highlights": [highlight(10, 40, 55.5), highlight(60, 95, 91)]}
    fake = FakeOpenAI(completion(json.dumps(picks)))
    async with client(fake) as ai:
        found = await ai.pick_highlights(TRANSCRIPT, 2)
    assert found == [Highlight(**highlight(60, 95, 91)), Highlight(**highlight(10, 40, 55.5))]
    schema_format = fake.sent["response_format"]
    assert schema_format["type"] == "json_schema"
    assert schema_format["json_schema"]["strict"]
    schema = schema_format["json_schema"]["schema"]
    item = schema["$defs"]["Highlight"]
    assert schema["additionalProperties"] is False
    assert item["additionalProperties"] is False
    assert set(item["required"]) == {"start", "end", "title", "hook", "virality_score"}
    assert item["properties"]["virality_score"]["maximum"] == 100
    assert "[10.0-19.5] Sentence number 1." in fake.sent["messages"][1]["content"]
    assert fake.sent["max_completion_tokens"] == 2000


@pytest.mark.parametrize(("content", "problem"), [
    ('{"highlights": [{"start": 10, "end": 40}]}', "Field required"),
    (json.dumps({"highlights": [highlight(40, 10, 50)]}), "must come after start"),
    (json.dumps({"highlights": [highlight(10, 40, 150)]}), "less than or equal to 100"),
    (json.dumps({"highlights": [highlight(10, 40, 50)], "extra": 1}), "Extra inputs"),
    ('{"highlights": [', "Invalid JSON"),
    (json.dumps({"highlights": [highlight(100, 400, 50)]}), "past the transcript's end"),
])
async def test_an_answer_that_breaks_the_schema_raises_malformed(content: str,
                                                                 problem: str) -> None:
    async with client(FakeOpenAI(completion(content))) as ai:
        with pytest.raises(MalformedResponseError, match=problem) as caught:
            await ai.pick_highlights(TRANSCRIPT, 2)
    assert caught.value.status_code == 200
    assert not caught.value.retryable
    assert ai.usage.spent["tokens"] == 120  # the tokens were spent all the same


@pytest.mark.parametrize(("content", "ask", "code"), [
    ('{"titles": 3}', lambda ai: ai.suggest_titles("a transcript"), "schema_mismatch"),
    (json.dumps({"highlights": [highlight(100, 400, 50)]}),
     lambda ai: ai.pick_highlights(TRANSCRIPT, 2), "bad_answer"),
])
async def test_answer_errors_carry_the_request_id(content: str, ask: Any, code: str) -> None:
    async with client(FakeOpenAI(completion(content))) as ai:
        with pytest.raises(MalformedResponseError) as caught:
            await ask(ai)
    assert (caught.value.request_id, caught.value.code) == ("req_abc", code)


async def test_more_highlights_than_asked_keeps_the_most_viral() -> None:
    picks = [highlight(10, 20, 40), highlight(20, 30, 90), highlight(30, 40, 70)]
    async with client(FakeOpenAI(completion(json.dumps({"highlights": picks})))) as ai:
        kept = await ai.pick_highlights(TRANSCRIPT, 2)
    assert [h.virality_score for h in kept] == [90, 70]


async def test_refusal_and_content_filter_raise_content_filtered() -> None:
    async with client(FakeOpenAI(completion(None, refusal="I can't help with that."))) as ai:
        with pytest.raises(ContentFilteredError, match="can't help"):
            await ai.write_caption("a transcript")
    async with client(FakeOpenAI(completion(None, finish="content_filter"))) as ai:
        with pytest.raises(ContentFilteredError, match="content filter"):
            await ai.write_caption("a transcript")


async def test_a_cut_off_answer_is_malformed() -> None:
    async with client(FakeOpenAI(completion('{"text": "Half a capt', finish="length"))) as ai:
        with pytest.raises(MalformedResponseError, match="cut off") as caught:
            await ai.write_caption("a transcript")
    assert caught.value.code == "length"


async def test_a_body_that_is_not_a_completion_is_malformed() -> None:
    async with client(FakeOpenAI({"object": "list", "data": []})) as ai:
        with pytest.raises(MalformedResponseError, match="ChatCompletion"):
            await ai.chat([{"role": "user", "content": "hi"}])


async def test_titles_caption_and_hashtags() -> None:
    async with client(FakeOpenAI(completion('{"titles": ["One", "Two", "Three"]}'))) as ai:
        assert await ai.suggest_titles("t", 2) == ["One", "Two"]
    async with client(FakeOpenAI(completion('{"text": "Watch this!"}'))) as ai:
        assert await ai.write_caption("t") == "Watch this!"
    tags = '{"hashtags": ["#asyncio", "python tips", "#asyncio", "Event-Loop"]}'
    async with client(FakeOpenAI(completion(tags))) as ai:
        assert await ai.suggest_hashtags("t") == ["#Asyncio", "#PythonTips", "#EventLoop"]
    async with client(FakeOpenAI(completion('{"hashtags": ["#", "ok"]}'))) as ai:
        with pytest.raises(MalformedResponseError, match="without a word"):
            await ai.suggest_hashtags("t")


# --- against the sandbox ----------------------------------------------------------------------


def sandbox_client(config: SandboxConfig | None = None, key: str = "sandbox-key",
                   ) -> OpenAIClient:
    return OpenAIClient(key, transport=httpx.ASGITransport(build_app(config)))


async def test_sandbox_structured_helpers_end_to_end() -> None:
    async with sandbox_client() as ai:
        picks = await ai.pick_highlights(TRANSCRIPT, 3)
        titles = await ai.suggest_titles(TRANSCRIPT, 3)
        caption = await ai.write_caption(TRANSCRIPT)
        tags = await ai.suggest_hashtags(TRANSCRIPT, 3)
        chat = await ai.chat([{"role": "user", "content": "What is asyncio?"}])
    assert picks
    assert len(picks) <= 3  # type: ignore[arg-type]
    assert all(isinstance(h, Highlight) for h in picks)  # type: ignore[arg-type]
    assert [h.virality_score for h in picks] == sorted(  # type: ignore[union-attr]
        (h.virality_score for h in picks), reverse=True)  # type: ignore[union-attr]
    assert titles
    assert isinstance(caption, str)
    assert caption
    assert tags
    assert all(tag.startswith("#") for tag in tags)  # type: ignore[union-attr]
    assert isinstance(chat, ChatCompletion)
    assert chat.request_id
    assert chat.request_id.startswith("req_")
    assert ai.usage.calls == 5
    assert ai.usage.spent["tokens"] > 0


async def test_sandbox_bad_key_and_rate_limit() -> None:
    async with sandbox_client(key="invalid-key") as ai:
        with pytest.raises(AuthenticationError):
            await ai.chat([{"role": "user", "content": "hi"}])
    config = SandboxConfig()
    config.openai.requests_per_minute = 1
    async with sandbox_client(config) as ai:
        await ai.chat([{"role": "user", "content": "hi"}])
        with pytest.raises(RateLimitError) as caught:
            await ai.chat([{"role": "user", "content": "again"}])
    assert caught.value.retryable
    assert caught.value.request_id
