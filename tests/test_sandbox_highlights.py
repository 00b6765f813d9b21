"""The fake model's highlights, titles, captions and hashtags make sense on any transcript."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import httpx
import pytest

from opusclip_lib.api import OpenAIClient
from opusclip_lib.api.models import Highlight
from opusclip_lib.media import load_transcript, sample_transcript
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.highlights import (
    Request,
    Sentence,
    hashtags_for,
    pick_spans,
    sentences_of,
    title_phrase,
    titles_for,
)

WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
SAMPLE = load_transcript(sample_transcript()).segments


@dataclass(frozen=True)
class Line:
    start: float
    end: float
    text: str


# Another talk, in Whisper-like lines that split sentences (no line is a whole sentence).
GARDEN = [Line(i * 4.0, i * 4.0 + 3.8, text) for i, text in enumerate([
    "Tomatoes need six hours", "of sun every day.", "Why do your seedlings", "grow so tall?",
    "They are looking for light,", "so move them closer.", "Never water the leaves;",
    "water the soil instead.", "A mistake many of you make", "is planting too early.",
    "Wait until the nights", "stay above ten degrees.", "Pinch the side shoots", "every week.",
    "Your harvest will be", "bigger and sweeter.", "Thanks for listening,", "and happy growing!",
])]


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def is_in_order(part: list[str], whole: list[str]) -> bool:
    """``part`` appears in ``whole`` as a contiguous run."""
    return any(whole[i:i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def sentences(lines) -> list[Sentence]:
    return sentences_of([(line.start, line.end, line.text) for line in lines])


@pytest.mark.parametrize("lines", [SAMPLE, GARDEN], ids=["sample", "garden"])
@pytest.mark.parametrize("count", [1, 3, 4])
def test_spans_are_the_count_asked_for_of_whole_sentences(lines, count):
    found = sentences(lines)
    spans = pick_spans(found, count, 10, 40)
    assert len(spans) == count
    starts = {s.start for s in found}
    ends = {s.end for s in found}
    for span in spans:
        assert span.start in starts
        assert span.end in ends
        assert 10 <= span.end - span.start <= 40
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_lines_that_split_sentences_are_joined():
    found = sentences(GARDEN)
    assert found[0].text == "Tomatoes need six hours of sun every day."
    assert (found[0].start, found[0].end) == (0.0, 7.8)


def test_too_short_a_transcript_relaxes_the_length_then_gives_what_it_has():
    found = sentences(GARDEN)  # 9 sentences over 72 s
    assert len(pick_spans(found, 6, 15, 60)) == 6
    assert len(pick_spans(found, 20, 15, 60)) == len(found)


@pytest.mark.parametrize("lines", [SAMPLE, GARDEN], ids=["sample", "garden"])
def test_hooks_and_titles_are_the_clips_own_words_in_order(lines):
    for span in pick_spans(sentences(lines), 3, 10, 40):
        clip_words = words(span.text)
        assert span.hook == span.sentences[0].text
        assert is_in_order(words(span.title), clip_words), span.title
        assert words(span.title) != words(span.hook)
        assert 0 <= span.virality <= 100


def test_the_score_prefers_questions_and_talking_to_the_viewer():
    plain = Sentence(0, 1, "Tomatoes grow in the garden.")
    asked = Sentence(0, 1, "Why do your tomatoes split?")
    assert asked.score > plain.score


@pytest.mark.parametrize(("text", "title"), [
    ("Tip number one: never block the event loop.", "Never block the event loop"),
    ("So remember: water the soil instead.", "Water the soil instead"),
    ("A single slow call without await freezes every task in the program.",
     "A single slow call without await freezes every task"),
    ("Why so much salt? Because pasta only soaks it up while it boils.", "Why so much salt"),
    ("That way, no broken clip ever shows up in your library.",
     "No broken clip ever shows up in your library"),
    ("Save a big cup of the starchy water before you drain it.",
     "Save a big cup of the starchy water"),
])
def test_title_phrases(text, title):
    assert title_phrase(text) == title


def test_fewer_sentences_than_titles_asked_for_still_give_the_count():
    four = sentences(SAMPLE[6:10])
    titles = titles_for(four, 5)
    assert len(set(titles)) == 5
    spoken = words(" ".join(s.text for s in four))
    assert all(is_in_order(words(title), spoken) for title in titles)


def test_hashtags_are_frequent_content_words():
    assert hashtags_for(sentences(GARDEN), 2) == ["#Water", "#Tomatoes"]


def test_the_request_is_read_from_the_task():
    request = Request.parse("Pick the 4 best moments for clips of 20-45 seconds. Caption of at "
                            "most 120 characters.")
    assert (request.count, request.min_s, request.max_s, request.max_characters) == (
        4, 20.0, 45.0, 120)


async def test_the_clients_helpers_read_as_sense_through_the_sandbox():
    app = build_app(SandboxConfig())
    async with OpenAIClient("sk-test", transport=httpx.ASGITransport(app)) as ai:
        picks = await ai.pick_highlights(GARDEN, 3, min_s=10, max_s=30)
        titles = await ai.suggest_titles(GARDEN, 4)
        caption = await ai.write_caption(GARDEN, max_characters=120)
        tags = await ai.suggest_hashtags(GARDEN, 3)
    assert len(picks) == 3
    assert all(isinstance(pick, Highlight) for pick in picks)
    transcript = words(" ".join(line.text for line in GARDEN))
    for pick in picks:
        assert pick.hook != pick.title
        assert is_in_order(words(pick.hook), transcript)
        assert is_in_order(words(pick.title), transcript)
    assert len(titles) == 4
    assert all(is_in_order(words(title), transcript) for title in titles)
    assert len(caption) <= 120
    assert tags == ["#Water", "#Tomatoes", "#Seedlings"]
