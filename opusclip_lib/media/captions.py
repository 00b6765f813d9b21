"""Captions as an ASS subtitle file, burned in by ffmpeg's libass ``subtitles`` filter.

The bundled ffmpeg has libass, so one filter draws outlined, word-by-word highlighted
("karaoke" ``\\k`` tags) captions with no image per caption. libass needs a font: fontconfig
inside a static ffmpeg may see no system fonts, so the package ships the caption font, DejaVu
Sans Bold (``opusclip_lib/data/fonts/``, with its licence), handed to the filter by ``fontsdir``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

from opusclip_lib.media.transcript import Caption

FONT_NAME = "DejaVu Sans"
FONT_FILE = "DejaVuSans-Bold.ttf"


def caption_font() -> Path:
    """DejaVu Sans Bold, package data (not under ``OPUSCLIP_DATA_DIR``: the font is no sample)."""
    return Path(__file__).resolve().parent.parent / "data" / "fonts" / FONT_FILE


def _timestamp(seconds: float) -> str:
    centis = round(max(seconds, 0.0) * 100)
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6_000)
    return f"{hours}:{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}"


def _escape(text: str) -> str:
    """Keep transcript text from being read as ASS override tags or line-break escapes."""
    return text.replace("\\", "\u2216").replace("{", "(").replace("}", ")")


def _karaoke(caption: Caption) -> str:
    """``{\\kN}word`` per word, N in centiseconds from this word's start to the next one's.

    Boundaries are rounded once and differenced, so rounding never drifts along a caption.
    """
    bounds = [word.start for word in caption.words[1:]] + [caption.end]
    marks = [round((t - caption.start) * 100) for t in [caption.start, *bounds]]
    return " ".join(
        f"{{\\k{after - before}}}{_escape(word.text)}"
        for word, (before, after) in zip(caption.words, pairwise(marks), strict=True)
    )


def ass_document(captions: Sequence[Caption], *, width: int, height: int,
                 font_size: int | None = None, margin_bottom: int | None = None) -> str:
    """An ASS script for a ``width`` x ``height`` video: spoken words turn yellow as they are said.

    Defaults scale with the frame: text a twelfth of the width (a caption of ~16 characters
    fits on one line), sitting in the lower fifth, below the middle band where a padded 16:9
    picture sits.
    """
    size = font_size or round(width / 12)
    margin = margin_bottom if margin_bottom is not None else round(height * 0.2)
    outline = max(round(size / 12), 1)
    header = (
        "[Script Info]\nScriptType: v4.00+\nWrapStyle: 0\nScaledBorderAndShadow: yes\n"
        f"PlayResX: {width}\nPlayResY: {height}\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        # Colours are &HAABBGGRR: primary (already said) yellow, secondary (to come) white.
        f"Style: Caption,{FONT_NAME},{size},&H0000F0FF,&H00FFFFFF,&H00000000,&H80000000,"
        f"-1,0,0,0,100,100,0,0,1,{outline},0,2,{round(width * 0.06)},{round(width * 0.06)},"
        f"{margin},1\n\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    events = "".join(
        f"Dialogue: 0,{_timestamp(c.start)},{_timestamp(c.end)},Caption,,0,0,0,,{_karaoke(c)}\n"
        for c in captions
    )
    return header + events


def write_caption_files(captions: Sequence[Caption], folder: str | os.PathLike[str], *,
                        width: int, height: int) -> Path:
    """Write ``captions.ass`` and link the caption font into ``folder``; return the .ass path.

    The filter then runs with ``folder`` as its working directory and refers to both by
    relative name, which sidesteps ffmpeg's two levels of filter-argument escaping for paths.
    """
    folder = Path(folder)
    (folder / FONT_FILE).symlink_to(caption_font())
    script = folder / "captions.ass"
    script.write_text(ass_document(captions, width=width, height=height), encoding="utf-8")
    return script


def _clock(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}{separator}{millis % 1000:03d}"


def srt_document(captions: Sequence[Caption]) -> str:
    """The captions as SubRip cues (what most players and editors import)."""
    return "".join(f"{index}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n\n"
                   for index, c in enumerate(captions, start=1))


def vtt_document(captions: Sequence[Caption]) -> str:
    """The captions as WebVTT cues (what browsers show with ``<track>``)."""
    cues = "".join(f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text}\n\n"
                   for c in captions)
    return f"WEBVTT\n\n{cues}"
