"""The official SDKs accept the served sandbox: if they do, learners' own code will too.

Drives ``opusclip_lib.sandbox.serve`` on loopback with the ``openai`` and ``elevenlabs`` Python
SDKs and with ``google-api-python-client`` built from the discovery document in
``shared/api-reference`` (``build_from_document``, pointed at the loopback root). These SDKs are
test-only dependencies (the ``dev`` extra). Google's client is synchronous: its calls run in a
worker thread (``asyncio.to_thread``) while the sandbox serves from its own thread.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date, datetime, time, timedelta
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import httplib2
import httpx
import openai
import pytest
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from googleapiclient.discovery import Resource, build_from_document
from googleapiclient.errors import HttpError
from pydantic import BaseModel, Field

from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, SandboxURLs
from tests.api_specs import api_reference

RACHEL = "21m00Tcm4TlvDq8ikWAM"
MESSAGES = [{"role": "user", "content": "Pick a highlight from the asyncio talk"}]
MODEL = "gpt-4o-mini"


class Event(BaseModel):
    """Every string format OpenAI documents for Structured Outputs, and a pattern."""

    at: datetime
    day: date
    starts: time
    lasts: timedelta
    id: uuid.UUID
    host_v4: IPv4Address
    host_v6: IPv6Address
    code: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
    contact: str = Field(json_schema_extra={"format": "email"})
    server: str = Field(json_schema_extra={"format": "hostname"})


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig.unlimited()


@pytest.fixture
async def ai(served: SandboxURLs) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=SANDBOX_KEY, base_url=served.openai) as client:
        yield client


@asynccontextmanager
async def elevenlabs_sdk(urls: SandboxURLs, key: str = SANDBOX_KEY) -> AsyncIterator[
        AsyncElevenLabs]:
    async with httpx.AsyncClient(timeout=30) as http:  # ours, so it is closed
        yield AsyncElevenLabs(api_key=key, base_url=urls.elevenlabs, httpx_client=http)


@contextmanager
def youtube_sdk(urls: SandboxURLs, key: str = SANDBOX_KEY) -> Iterator[Resource]:
    document = (api_reference() / "youtube-v3-discovery.json").read_text()
    with build_from_document(document, developerKey=key, http=httplib2.Http(),
                             client_options={"api_endpoint": urls.root + "/"}) as service:
        yield service


@pytest.fixture
async def eleven(served: SandboxURLs) -> AsyncIterator[AsyncElevenLabs]:
    async with elevenlabs_sdk(served) as client:
        yield client


@pytest.fixture
def youtube(served: SandboxURLs) -> Iterator[Resource]:
    with youtube_sdk(served) as service:
        yield service


async def run(request: Any, **options: Any) -> Any:
    return await asyncio.to_thread(request.execute, **options)


# --- OpenAI ------------------------------------------------------------------------------------

async def test_openai_plain_chat(ai):
    completion = await ai.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content
    assert completion.usage is not None


async def test_openai_structured_chat_answers_the_schema(ai):
    schema = {"type": "object", "additionalProperties": False, "required": ["title", "score"],
              "properties": {"title": {"type": "string"}, "score": {"type": "integer"}}}
    response_format = {"type": "json_schema",
                       "json_schema": {"name": "pick", "schema": schema, "strict": True}}
    completion = await ai.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                  response_format=response_format)
    answer = json.loads(completion.choices[0].message.content)
    assert sorted(answer) == ["score", "title"]


async def test_openai_parse_accepts_every_documented_string_format(ai):
    completion = await ai.chat.completions.parse(model=MODEL, messages=MESSAGES,
                                                 response_format=Event)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Event)
    assert "@" in parsed.contact
    assert "." in parsed.server


async def test_openai_streamed_chat_matches_the_plain_answer(ai):
    plain = await ai.chat.completions.create(model=MODEL, messages=MESSAGES)
    stream = await ai.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,
                                              stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage is not None


async def test_openai_stream_helper_gives_the_final_completion(ai):
    async with ai.chat.completions.stream(model=MODEL, messages=MESSAGES,
                                          response_format=Event) as stream:
        final = await stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Event)


async def test_openai_models_list_and_retrieve(ai):
    listed = [model.id async for model in ai.models.list()]
    assert MODEL in listed
    assert (await ai.models.retrieve(MODEL)).id == MODEL


async def test_openai_responses_minimal(ai):
    response = await ai.responses.create(model=MODEL, input="Say hello")
    assert response.status == "completed"
    assert response.output_text


async def test_openai_errors_are_the_sdks_own_exceptions(served):
    async with openai.AsyncOpenAI(api_key="invalid-key", base_url=served.openai) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model=MODEL, messages=MESSAGES)
    async with openai.AsyncOpenAI(api_key=SANDBOX_KEY, base_url=served.openai) as ai:
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            await ai.models.retrieve("no-such-model")
        with pytest.raises(openai.BadRequestError):
            await ai.chat.completions.create(model=MODEL, messages=[])
        with pytest.raises(openai.NotFoundError, match="Invalid URL"):
            await ai.get("/no-such-route", cast_to=object)


async def test_openai_sdk_retries_a_rate_limit_using_retry_after_ms(ai, config):
    fault = config.inject("openai.chat.completions", "rate_limit", times=2, retry_after_s=0.01)
    completion = await ai.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content
    assert fault.times == 0


# --- ElevenLabs --------------------------------------------------------------------------------

async def test_elevenlabs_convert_and_stream_give_the_same_audio(eleven):
    converted = b"".join([piece async for piece in eleven.text_to_speech.convert(
        RACHEL, text="Hello from the sandbox.")])
    streamed = b"".join([piece async for piece in eleven.text_to_speech.stream(
        RACHEL, text="Hello from the sandbox.")])
    assert converted
    assert streamed == converted


async def test_elevenlabs_convert_with_timestamps(eleven):
    timed = await eleven.text_to_speech.convert_with_timestamps(RACHEL, text="Hello.")
    assert timed.alignment is not None
    assert "".join(timed.alignment.characters) == "Hello."


async def test_elevenlabs_voices_v1_v2_and_one_voice(eleven):
    everything = await eleven.voices.get_all()
    seen, token = [], None
    while True:
        page = await eleven.voices.search(page_size=3, next_page_token=token)
        seen += [voice.voice_id for voice in page.voices]
        if not page.has_more:
            break
        token = page.next_page_token
    assert seen == [voice.voice_id for voice in everything.voices]
    assert (await eleven.voices.get(RACHEL)).name == "Rachel"


async def test_elevenlabs_errors_carry_their_status(served, eleven):
    with pytest.raises(ApiError) as missing:
        await eleven.voices.get("no-such-voice")
    async with elevenlabs_sdk(served, "invalid-key") as bad:
        with pytest.raises(ApiError) as refused:
            await bad.voices.get_all()
    assert missing.value.status_code == 404
    assert refused.value.status_code == 401


async def test_elevenlabs_sdk_retries_when_the_system_is_busy(eleven, config):
    fault = config.inject("elevenlabs.voices.list", "rate_limit", times=1, retry_after_s=0)
    voices = await eleven.voices.get_all()
    assert voices.voices
    assert fault.times == 0


# --- YouTube, Google's client built from the discovery document --------------------------------

async def test_youtube_videos_list_with_repeated_parameters(youtube):
    answer = await run(youtube.videos().list(part=["snippet", "statistics"],
                                             id=["opusSample1", "R-j_8U_m7aS"]))
    assert [item["id"] for item in answer["items"]] == ["opusSample1", "R-j_8U_m7aS"]
    assert all("statistics" in item for item in answer["items"])


async def test_youtube_fields_returns_a_partial_answer(youtube):
    answer = await run(youtube.videos().list(part="snippet,statistics", id="opusSample1",
                                             fields="items(id,snippet/title)"))
    assert answer == {"items": [{"id": "opusSample1", "snippet": {
        "title": answer["items"][0]["snippet"]["title"]}}]}


async def test_youtube_search_pages_to_the_end(youtube):
    request = youtube.search().list(part="snippet", q="async", type="video", maxResults=4)
    ids, total = [], None
    while request is not None:
        page = await run(request)
        total = page["pageInfo"]["totalResults"]
        ids += [item["id"]["videoId"] for item in page["items"]]
        request = youtube.search().list_next(request, page)
    assert len(ids) == total
    assert len(set(ids)) == total


async def test_youtube_etag_gives_304_when_nothing_changed(youtube):
    first = await run(youtube.videos().list(part="snippet", id="opusSample1"))
    again = youtube.videos().list(part="snippet", id="opusSample1")
    again.headers["If-None-Match"] = f'"{first["etag"]}"'
    with pytest.raises(HttpError) as unchanged:
        await run(again)
    assert unchanged.value.resp.status == 304


async def test_youtube_errors_and_retries(served, youtube, config):
    with youtube_sdk(served, "invalid-key") as bad, pytest.raises(HttpError) as refused:
        await run(bad.videos().list(part="id", id="opusSample1"))
    assert refused.value.resp.status == 400
    assert "API_KEY_INVALID" in [detail.get("reason") for detail in refused.value.error_details]
    fault = config.inject("youtube.videos.list", "server_error", times=1)
    answer = await run(youtube.videos().list(part="id", id="opusSample1"), num_retries=2)
    assert answer["items"]
    assert fault.times == 0
