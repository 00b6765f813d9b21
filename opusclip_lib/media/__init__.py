"""Media: the bundled ffmpeg run from asyncio, transcripts, and vertical clip rendering."""

from opusclip_lib.media.ffmpeg import (
    FFmpegError,
    Progress,
    ProgressCallback,
    atomic_output,
    cpu_slots,
    default_limiter,
    ffmpeg_exe,
    ffmpeg_filters,
    run_ffmpeg,
)
from opusclip_lib.media.probe import MediaInfo, probe
from opusclip_lib.media.render import (
    ClipOutOfRangeError,
    RenderedClip,
    extract_frame,
    mux_voiceover,
    render_clip,
)
from opusclip_lib.media.samples import (
    SAMPLE_TITLE,
    SAMPLE_VIDEO_ID,
    sample_transcript,
    sample_video,
)
from opusclip_lib.media.transcript import (
    Caption,
    Segment,
    Transcript,
    Word,
    build_captions,
    load_transcript,
)

__all__ = [
    "SAMPLE_TITLE", "SAMPLE_VIDEO_ID", "Caption", "ClipOutOfRangeError", "FFmpegError", "MediaInfo",
    "Progress", "ProgressCallback", "RenderedClip", "Segment", "Transcript", "Word",
    "atomic_output", "build_captions", "cpu_slots", "default_limiter", "extract_frame",
    "ffmpeg_exe", "ffmpeg_filters", "load_transcript", "mux_voiceover", "probe", "render_clip",
    "run_ffmpeg", "sample_transcript", "sample_video",
]
