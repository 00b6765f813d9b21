"""OpenAI chat completions, with structured outputs for the clipping app's text work, and
audio transcription with word timestamps.

Every structured call sends a strict ``json_schema`` made from a pydantic model and validates
the answer against the same model; an answer that breaks it raises
:class:`~opusclip_lib.api.errors.MalformedResponseError`, a refusal or content filter raises
:class:`~opusclip_lib.api.errors.ContentFilteredError`. Tokens are counted in ``usage.spent``
(``tokens``, ``prompt_tokens``, ``completion_tokens``) and on each metric event; transcription
is billed by the second, counted as ``audio_seconds``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, Unpack

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from opusclip_lib.api._base import APIClient, ClientOptions, summarize
from opusclip_lib.api._chat_stream import ChatStream
from opusclip_lib.api._headers import request_id_of
from opusclip_lib.api._schema import strict_json_schema
from opusclip_lib.api.errors import (
    APIError,
    ContentFilteredError,
    InvalidRequestError,
    MalformedResponseError,
)
from opusclip_lib.api.models.openai import (
    Caption,
    ChatCompletion,
    Hashtags,
    Highlight,
    HighlightPicks,
    TimedText,
    TitleIdeas,
    Transcription,
)
from opusclip_lib.resilience.fallback import Fallback

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
E = TypeVar("E", bound=APIError)

Message = Mapping[str, Any]
Transcript = str | Sequence[TimedText]

DEFAULT_MODEL = "gpt-4o-mini"
HELPER_MAX_TOKENS = 2_000  # room for ten highlights with titles and hooks
ESTIMATED_ANSWER_TOKENS = 1_024  # for the rate limiter when a call sets no max_completion_tokens
STREAM_CHUNK_TIMEOUT_S = 30.0  # longest gap between two chunks before a stream counts as stalled
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English
TIME_TOLERANCE = 1.0  # seconds a highlight may stray past the transcript's end
TRANSCRIPTIONS_PATH = "/audio/transcriptions"
TRANSCRIPTION_MODEL = "whisper-1"
MAX_AUDIO_BYTES = 25 * 1024 * 1024  # the endpoint's upload limit: 26,214,400 bytes
AUDIO_MEDIA_TYPES = {
    "flac": "audio/flac", "m4a": "audio/mp4", "mp3": "audio/mpeg", "mp4": "audio/mp4",
    "mpeg": "audio/mpeg", "mpga": "audio/mpeg", "oga": "audio/ogg", "ogg": "audio/ogg",
    "wav": "audio/wav", "webm": "audio/webm"}
"""By extension, fixed here: ``mimetypes`` answers differ between machines, and a request body
that differs would not match its cassette."""


def render_transcript(transcript: Transcript) -> str:
    """Plain text as is; timed pieces as ``[12.0-15.5] text`` lines the model can cite."""
    if isinstance(transcript, str):
        return transcript
    return "\n".join(f"[{piece.start:.1f}-{piece.end:.1f}] {piece.text}" for piece in transcript)


def estimated_tokens(body: Mapping[str, Any]) -> float:
    """What a call may spend from the token budget: the prompt plus the answer it may write."""
    prompt = sum(len(str(message.get("content") or "")) for message in body["messages"])
    answer = body.get("max_completion_tokens") or ESTIMATED_ANSWER_TOKENS
    return prompt / CHARS_PER_TOKEN + answer


class OpenAIClient(APIClient):
    """``async with OpenAIClient() as ai: picks = await ai.pick_highlights(segments, 3)``.

    Key from ``OPENAI_API_KEY`` (``Authorization: Bearer``). Timeouts: 5 s to connect, 120 s to
    read (a structured answer over a long transcript can take a minute; the official SDK allows
    600 s), 30 s for a pooled connection. Limits: 100 connections kept alive 4 s.
    """

    provider = "openai"
    key_variable = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    default_timeout = httpx.Timeout(120.0, connect=5.0, pool=30.0)
    default_limits = httpx.Limits(max_connections=100, max_keepalive_connections=100,
                                  keepalive_expiry=4.0)
    cost_unit = "tokens"

    def __init__(self, api_key: str | SecretStr | None = None, *, model: str = DEFAULT_MODEL,
                 **options: Unpack[ClientOptions]) -> None:
        super().__init__(api_key, **options)
        self.model = model

    def _auth_headers(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def _spend(self, operation: str, response: httpx.Response, result: object) -> dict[str, float]:
        if isinstance(result, Transcription):
            return {"audio_seconds": result.duration}
        usage = result.usage if isinstance(result, ChatCompletion) else None
        if usage is None:
            return {}
        return {"tokens": usage.total_tokens, "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens}

    def _parse_completion(self, response: httpx.Response) -> ChatCompletion:
        completion = self._parse_model(response, ChatCompletion)
        completion.request_id = request_id_of(response.headers)
        return completion

    async def _complete(self, body: dict[str, Any],
                        finish: Callable[[ChatCompletion], T]) -> T | Fallback[T]:
        """One completion; ``finish`` turns it into the result inside the retried operation, so
        a malformed answer is never cached."""
        async def attempt() -> T:
            request = self._request("POST", "/chat/completions", json=body,
                                    headers={"Accept": "application/json"})
            completion = await self._exchange("chat.completions", request, self._parse_completion)
            return finish(completion)

        return await self._call(attempt, cost=estimated_tokens(body),
                                cache_key=self._cache_key("POST", "/chat/completions", body=body))

    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   **params: Any) -> ChatCompletion | Fallback[ChatCompletion]:
        """``POST /chat/completions``; ``params`` go into the body as given
        (``temperature``, ``max_completion_tokens``, ``seed``, ``response_format``, ...)."""
        body = {"model": model or self.model, "messages": [dict(m) for m in messages], **params}
        return await self._complete(body, lambda completion: completion)

    def stream_chat(self, messages: Sequence[Message], *, model: str | None = None,
                    include_usage: bool = True, chunk_timeout_s: float | None = None,
                    **params: Any) -> ChatStream[BaseModel]:
        """``async with ai.stream_chat(messages) as stream: async for chunk in stream:``: the
        answer as server-sent events (``stream: true``), the token usage in a last chunk when
        ``include_usage``. See :class:`~opusclip_lib.api._chat_stream.ChatStream`."""
        return ChatStream(self, self._stream_body(messages, model, include_usage, params),
                          output_type=None, chunk_timeout_s=self._chunk_timeout(chunk_timeout_s))

    def stream_structured(self, messages: Sequence[Message], output_type: type[M], *,
                          model: str | None = None, include_usage: bool = True,
                          chunk_timeout_s: float | None = None, **params: Any) -> ChatStream[M]:
        """A structured answer streamed: partial JSON while it arrives, ``stream.output()``
        (validated into ``output_type``) once it is finished."""
        params = {"response_format": strict_json_schema(output_type), **params}
        return ChatStream(self, self._stream_body(messages, model, include_usage, params),
                          output_type=output_type,
                          chunk_timeout_s=self._chunk_timeout(chunk_timeout_s))

    def _stream_body(self, messages: Sequence[Message], model: str | None, include_usage: bool,
                     params: dict[str, Any]) -> dict[str, Any]:
        body = {"model": model or self.model, "messages": [dict(m) for m in messages],
                "stream": True, **params}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def _chunk_timeout(chunk_timeout_s: float | None) -> float:
        return STREAM_CHUNK_TIMEOUT_S if chunk_timeout_s is None else chunk_timeout_s

    async def structured(self, messages: Sequence[Message], output_type: type[M], *,
                         model: str | None = None, **params: Any) -> M | Fallback[M]:
        """A completion constrained to ``output_type``'s schema, validated into it."""
        return await self._structured(messages, output_type, lambda output: output,
                                      model=model, **params)

    async def _structured(self, messages: Sequence[Message], output_type: type[M],
                          extract: Callable[[M], T], *, model: str | None = None,
                          **params: Any) -> T | Fallback[T]:
        body = {"model": model or self.model, "messages": [dict(m) for m in messages],
                "response_format": strict_json_schema(output_type), **params}

        def finish(completion: ChatCompletion) -> T:
            output = self._validated(completion, output_type)
            try:
                return extract(output)
            except ValueError as exc:  # valid JSON, but not what was asked for
                raise self._answer_error(MalformedResponseError, completion, "bad_answer",
                                         str(exc)) from exc

        return await self._complete(body, finish)

    async def transcribe(self, audio: bytes, *, filename: str,
                         model: str = TRANSCRIPTION_MODEL, language: str | None = None,
                         prompt: str | None = None,
                         ) -> Transcription | Fallback[Transcription]:
        """``POST /audio/transcriptions`` as ``verbose_json`` with word and segment timestamps.

        ``filename`` names the format (``talk.mp3``, ``chunk.ogg``): OpenAI identifies the audio
        by its extension. Audio over the endpoint's 25 MB limit is refused here, before the
        upload, with :class:`InvalidRequestError`; split it at silences first. The cache key is
        the audio's SHA-256 and the parameters, so a re-run of the same audio is one lookup.
        """
        if len(audio) > MAX_AUDIO_BYTES:
            raise InvalidRequestError(
                f"{filename} is {len(audio):,} bytes; the transcription endpoint takes at most "
                f"{MAX_AUDIO_BYTES:,} (split the audio at silences)", provider=self.provider,
                status_code=413, code="audio_too_large")
        fields = {"model": model, "response_format": "verbose_json",
                  "language": language, "prompt": prompt}
        form: list[tuple[str, tuple[str | None, str | bytes] | tuple[str, bytes, str]]] = [
            (name, (None, value)) for name, value in fields.items() if value is not None]
        form += [("timestamp_granularities[]", (None, granularity))
                 for granularity in ("word", "segment")]
        extension = filename.rpartition(".")[2].lower()
        media_type = AUDIO_MEDIA_TYPES.get(extension, "application/octet-stream")
        form.append(("file", (filename, audio, media_type)))

        async def attempt() -> Transcription:
            request = self._request("POST", TRANSCRIPTIONS_PATH, files=form,
                                    headers={"Accept": "application/json"})
            return await self._exchange("audio.transcriptions", request, self._parse_transcription)

        # Hash the audio once, and only when a cache will look the key up.
        cache_key = None if self.resilience is None else self._cache_key(
            "POST", TRANSCRIPTIONS_PATH, body={**fields, "filename": filename,
                                               "audio_sha256": hashlib.sha256(audio).hexdigest()})
        return await self._call(attempt, cache_key=cache_key)

    def _parse_transcription(self, response: httpx.Response) -> Transcription:
        transcription = self._parse_model(response, Transcription)
        transcription.request_id = request_id_of(response.headers)
        return transcription

    def _validated(self, completion: ChatCompletion, output_type: type[M]) -> M:
        choice = completion.choices[0]
        if choice.message.refusal:
            raise self._answer_error(ContentFilteredError, completion, "refusal",
                                     f"the model refused: {choice.message.refusal}")
        if choice.finish_reason == "content_filter":
            raise self._answer_error(ContentFilteredError, completion, "content_filter",
                                     "the answer was stopped by OpenAI's content filter")
        if choice.finish_reason == "length":
            raise self._answer_error(MalformedResponseError, completion, "length",
                                     "the answer was cut off at max_completion_tokens, so its "
                                     "JSON is incomplete")
        try:
            return output_type.model_validate_json(choice.message.content or "")
        except ValidationError as exc:
            raise self._answer_error(
                MalformedResponseError, completion, "schema_mismatch",
                f"the answer breaks the {output_type.__name__} schema: {summarize(exc)}") from exc

    def _answer_error(self, kind: type[E], completion: ChatCompletion, code: str,
                      message: str) -> E:
        """An error about a delivered (200) answer, tied to its request id."""
        return kind(message, provider=self.provider, status_code=200, code=code,
                    request_id=completion.request_id)

    # --- the clipping app's helpers -----------------------------------------------------------

    def _about(self, transcript: Transcript, task: str) -> list[Message]:
        return [{"role": "system", "content": "You help turn long videos into short vertical "
                                              "clips for TikTok, Reels and Shorts."},
                {"role": "user", "content": f"{task}\n\nTranscript:\n"
                                            f"{render_transcript(transcript)}"}]

    async def _ask(self, transcript: Transcript, task: str, output_type: type[M],
                   extract: Callable[[M], T]) -> T | Fallback[T]:
        return await self._structured(self._about(transcript, task), output_type, extract,
                                      max_completion_tokens=HELPER_MAX_TOKENS)

    async def pick_highlights(self, transcript: Transcript, n: int = 3, *,
                              min_s: float = 15, max_s: float = 60,
                              ) -> list[Highlight] | Fallback[list[Highlight]]:
        """The ``n`` best clips, most viral first, each within the transcript's time span."""
        task = (f"Pick the {n} best moments for clips of {min_s:g}-{max_s:g} "
                "seconds. Use only times from the transcript (seconds); start each clip at the "
                "start of a sentence, end it at the end of one; clips must not overlap. Score "
                "virality from 0 to 100.")
        return await self._ask(transcript, task, HighlightPicks,
                               lambda picks: self._checked_highlights(picks, transcript, n))

    def _checked_highlights(self, picks: HighlightPicks, transcript: Transcript,
                            n: int) -> list[Highlight]:
        """The ``n`` most viral picks. More than asked is common from a model and harmless
        (the extras are dropped); a clip past the transcript's end is invented, and fails."""
        if not isinstance(transcript, str) and transcript:
            last = max(piece.end for piece in transcript) + TIME_TOLERANCE
            problems = [f"{h.start:g}-{h.end:g}s is past the transcript's end ({last:g}s)"
                        for h in picks.highlights if h.end > last]
            if problems:
                raise ValueError("highlights break the request: " + "; ".join(problems))
        return sorted(picks.highlights, key=lambda h: h.virality_score, reverse=True)[:n]

    async def suggest_titles(self, transcript: Transcript, n: int = 5,
                             ) -> list[str] | Fallback[list[str]]:
        task = f"Suggest {n} titles for a clip of this transcript, best first, under 70 characters."
        return await self._ask(transcript, task, TitleIdeas, lambda ideas: ideas.titles[:n])

    async def write_caption(self, transcript: Transcript, *,
                            max_characters: int = 300) -> str | Fallback[str]:
        task = (f"Write the post caption for a clip of this transcript, at most {max_characters} "
                "characters, ending with a call to action. No hashtags.")
        return await self._ask(transcript, task, Caption, lambda caption: caption.text)

    async def suggest_hashtags(self, transcript: Transcript, n: int = 5,
                               ) -> list[str] | Fallback[list[str]]:
        task = f"Suggest {n} hashtags for a clip of this transcript, most relevant first."
        return await self._ask(transcript, task, Hashtags, lambda tags: tags.hashtags[:n])
