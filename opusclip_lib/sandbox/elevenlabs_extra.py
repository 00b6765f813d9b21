"""ElevenLabs routes beyond plain text-to-speech: the chunked ``/stream``, ``GET
/v1/voices/{voice_id}`` and the paged ``GET /v2/voices`` (what the current SDK's
``voices.search()`` calls).

``/stream`` renders the same audio as ``POST /v1/text-to-speech/{voice_id}`` and sends it in
``config.elevenlabs.chunk_bytes`` pieces, each after ``config.elevenlabs.chunk_latency``
(chunked transfer encoding, no Content-Length), with the same headers. ``/v2/voices`` pages with
an opaque ``next_page_token`` (the offset, base64) and filters by ``search`` (name, description
and labels), ``voice_ids`` (repeatable) and ``category``.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from opusclip_lib.sandbox.elevenlabs_models import ElevenLabsError
from opusclip_lib.sandbox.pipeline import route, work
from opusclip_lib.sandbox.streams import paced, stream_fault

if TYPE_CHECKING:
    from opusclip_lib.sandbox.elevenlabs import ElevenLabsAPI

MAX_PAGE_SIZE = 100


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(token) from None
    name, _, number = text.partition(":")
    if name != "offset" or not number.isdigit():
        raise ValueError(token)
    return int(number)


def routes(api: ElevenLabsAPI) -> list[Route]:
    def chunks(audio: bytes) -> list[bytes]:
        size = api.config.elevenlabs.chunk_bytes
        return [audio[i: i + size] for i in range(0, len(audio), size)]

    async def stream(request: Request) -> Response:
        try:
            _, audio, fmt, headers = await api._speak(request, "elevenlabs.text_to_speech.stream")
        except ElevenLabsError as error:
            return error.response()
        pieces = paced(chunks(audio), latency=api.config.elevenlabs.chunk_latency,
                       fault=stream_fault(request), tracker=api.streams)
        return StreamingResponse(pieces, media_type=fmt.media_type, headers=headers)

    async def get_voice(request: Request) -> Response:
        voice_id = request.path_params["voice_id"]
        try:
            api._authorise(request)
            voice = next((v for v in api._voices["voices"] if v["voice_id"] == voice_id), None)
            if voice is None:
                raise ElevenLabsError.of(404, "voice_not_found",
                                         f"A voice with voice_id {voice_id} was not found.")
        except ElevenLabsError as error:
            return error.response()
        await work(api.config, "elevenlabs.voices.get")
        return JSONResponse(voice)

    async def search_voices(request: Request) -> Response:
        params = request.query_params
        try:
            api._authorise(request)
            try:
                size = int(params.get("page_size", "10"))
                offset = _page_offset(params["next_page_token"]) if params.get(
                    "next_page_token") else 0
            except ValueError:
                raise ElevenLabsError.of(400, "invalid_parameters",
                                         "page_size or next_page_token is invalid.") from None
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise ElevenLabsError.of(400, "invalid_parameters",
                                         f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
        except ElevenLabsError as error:
            return error.response()
        await work(api.config, "elevenlabs.voices.search")
        found = api._voices["voices"]
        wanted_ids = [i for value in params.getlist("voice_ids") for i in value.split(",") if i]
        if wanted_ids:
            found = [v for v in found if v["voice_id"] in wanted_ids]
        if params.get("category"):
            found = [v for v in found if v["category"] == params["category"]]
        if params.get("search"):
            needle = params["search"].lower()
            found = [v for v in found if needle in " ".join(
                [v["name"], v["description"] or "", *v["labels"].values()]).lower()]
        page = found[offset: offset + size]
        more = offset + size < len(found)
        return JSONResponse({"voices": page, "has_more": more, "total_count": len(found),
                             "next_page_token": _page_token(offset + size) if more else None})

    return [
        route(api, "/v1/text-to-speech/{voice_id}/stream", "elevenlabs.text_to_speech.stream",
              stream, ["POST"]),
        route(api, "/v1/voices/{voice_id}", "elevenlabs.voices.get", get_voice, ["GET"]),
        route(api, "/v2/voices", "elevenlabs.voices.search", search_voices, ["GET"]),
    ]
