"""Typed responses (pydantic v2), one module per provider, re-exported here."""

from opusclip_lib.api.models.elevenlabs import (
    Alignment,
    SpeechAudio,
    SpeechWithTimestamps,
    Voice,
    VoiceSettings,
)
from opusclip_lib.api.models.openai import (
    Caption,
    ChatCompletion,
    ChatMessage,
    Choice,
    CompletionUsage,
    Hashtags,
    Highlight,
    HighlightPicks,
    TimedText,
    TitleIdeas,
    Transcription,
    TranscriptionSegment,
    TranscriptionUsage,
    TranscriptionWord,
)
from opusclip_lib.api.models.stability import AspectRatio, GeneratedImage, OutputFormat
from opusclip_lib.api.models.streaming import (
    ChatCompletionChunk,
    ChoiceDelta,
    ChunkChoice,
    SpeechChunk,
    StreamedFile,
    WordTiming,
)
from opusclip_lib.api.models.youtube import (
    ContentDetails,
    PageInfo,
    SearchListResponse,
    SearchResult,
    SearchResultId,
    SearchSnippet,
    Thumbnail,
    Video,
    VideoListResponse,
    VideoSnippet,
    VideoStatistics,
)

__all__ = [
    "Alignment", "AspectRatio", "Caption", "ChatCompletion", "ChatCompletionChunk",
    "ChatMessage", "Choice", "ChoiceDelta", "ChunkChoice", "CompletionUsage", "ContentDetails",
    "GeneratedImage", "Hashtags", "Highlight", "HighlightPicks", "OutputFormat", "PageInfo",
    "SearchListResponse", "SearchResult", "SearchResultId", "SearchSnippet", "SpeechAudio",
    "SpeechChunk", "SpeechWithTimestamps", "StreamedFile", "Thumbnail", "TimedText",
    "TitleIdeas", "Transcription", "TranscriptionSegment", "TranscriptionUsage",
    "TranscriptionWord", "Video", "VideoListResponse", "VideoSnippet", "VideoStatistics",
    "Voice", "VoiceSettings", "WordTiming",
]
