"""The fake model's editorial sense: clips, titles, hooks, captions and hashtags from a transcript.

Whatever transcript the prompt holds (``[12.0-15.5] text`` lines), the answers are built from
its own sentences, so they read as sense and can be checked against it:

- **Sentences.** Each line is a unit; a line that does not end a sentence (``.``, ``!``, ``?``)
  is joined to the next, so a clip always starts at a sentence start and ends at a sentence end.
- **Score.** Each sentence earns points for what keeps a viewer watching, counted in its words:
  3 for a question, 2 for talking to the viewer (``you``, ``your``), 1 for a number, 1 for
  each strong word (``never``, ``mistake``, ``instead``, ...; at most 2), plus a tenth of a
  point per distinct content word. A clip scores the mean of its sentences plus half its
  opening sentence's score (a strong first line matters most). Virality is that score mapped
  onto 0-100.
- **Picking.** Candidates are runs of contiguous sentences lasting ``min_s``-``max_s`` seconds;
  a dynamic programme picks exactly the count asked for, not overlapping, with the highest total
  score. When the transcript has too few such runs it relaxes to shorter runs, then to single
  sentences; it returns fewer only when there are fewer sentences than clips asked for.
- **Words.** A hook is the clip's first sentence; a title is a short phrase cut from its best
  sentence after the hook (its words in order, filler openers and dangling small words
  trimmed), never equal to the hook. Titles, captions and hashtags for a whole transcript come
  from its best sentences and most frequent content words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

SENTENCE_END = (".", "!", "?")
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
CLAUSE = re.compile(r"[,:;.?!]\s+|\s+[-\u2013]\s+")  # a hyphen or an en dash
SMALL_WORDS = frozenset(
    "a an the and or but so of to in on at by for with from as is are was were be been it its "
    "this that these those there here we you your i he she they them our my me us if then than "
    "do does did not no just very can will would should could into about over what which who "
    "how when where why all any some more most also only each every one".split())
GENERIC_WORDS = frozenset(
    "number thing things way time times really like just make makes made lot tip part another "
    "other".split())
CONJUNCTIONS = frozenset("and but so or".split())
LABELS = frozenset("tip step part number chapter lesson".split())
DEPENDENT = frozenset(
    "like while when if because as although once after before until since unless".split())
DANGLING = SMALL_WORDS | frozenset(
    "before after really until while because since though also even still ever again too "
    "whether without".split())
OPENERS = frozenset("so and but now well okay ok then first here there today also".split())
STRONG_WORDS = frozenset(
    "never always mistake secret instead only every without stop wrong best worst fastest "
    "slowest free bound measure".split())
COUNT = re.compile(r"\b(\d{1,2}) (?:best |top )?(?:moments|highlights|clips|titles|hashtags)\b",
                   re.IGNORECASE)
SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*[-\u2013]\s*(\d+(?:\.\d+)?)\s*seconds")
CHARACTERS = re.compile(r"at most (\d+) characters")
MAX_TITLE_WORDS = 9  # about 50 characters: inside the 70 a title may have
MAX_RUN_SENTENCES = 12
CALL_TO_ACTION = "Watch to the end, then tell us what you would try first."


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str

    @cached_property
    def words(self) -> list[str]:
        return WORD.findall(self.text)

    @cached_property
    def score(self) -> float:
        lowered = [word.lower() for word in self.words]
        content = {word for word in lowered if word not in SMALL_WORDS and len(word) > 2}
        return (3 * self.text.rstrip().endswith("?")
                + 2 * any(word in ("you", "your", "you're") for word in lowered)
                + any(word.isdigit() for word in lowered)
                + min(2, sum(word in STRONG_WORDS for word in lowered))
                + len(content) / 10)


@dataclass(frozen=True, slots=True)
class Span:
    """Contiguous sentences: one clip."""

    sentences: tuple[Sentence, ...]

    @property
    def start(self) -> float:
        return self.sentences[0].start

    @property
    def end(self) -> float:
        return self.sentences[-1].end

    @property
    def text(self) -> str:
        return " ".join(sentence.text for sentence in self.sentences)

    @property
    def score(self) -> float:
        mean = sum(s.score for s in self.sentences) / len(self.sentences)
        return mean + self.sentences[0].score / 2

    @property
    def virality(self) -> float:
        """The score on 0-100: 40 for a plain clip, rising 10 a point, capped at 99."""
        return round(min(99.0, 40 + 10 * self.score), 1)

    @property
    def hook(self) -> str:
        return self.sentences[0].text

    @property
    def title(self) -> str:
        # The best sentence after the hook, so the title adds something; the hook itself when
        # the clip is one sentence.
        best = max(self.sentences[1:] or self.sentences, key=lambda s: s.score)
        title = title_phrase(best.text)
        if _same(title, self.hook) and len(best.words) > 1:
            title = title_phrase(" ".join(best.words[1:]))  # a short one-sentence clip
        return title


@dataclass(frozen=True, slots=True)
class Request:
    """What the task text asks for, where it says so (``Pick the 3 best moments for clips of
    15-60 seconds``, ``Suggest 5 hashtags``, ``at most 300 characters``)."""

    count: int | None
    min_s: float
    max_s: float
    max_characters: int

    @classmethod
    def parse(cls, task: str) -> Request:
        count, seconds, characters = (COUNT.search(task), SECONDS.search(task),
                                      CHARACTERS.search(task))
        return cls(int(count.group(1)) if count else None,
                   float(seconds.group(1)) if seconds else 15.0,
                   float(seconds.group(2)) if seconds else 60.0,
                   int(characters.group(1)) if characters else 300)


def sentences_of(lines: Sequence[tuple[float, float, str]]) -> list[Sentence]:
    """Transcript lines as sentences: lines that end mid-sentence are joined to the next (when
    the transcript is punctuated at all; unpunctuated lines are each taken as a sentence)."""
    punctuated = any(text.rstrip().endswith(SENTENCE_END) for _, _, text in lines)
    sentences: list[Sentence] = []
    pending: list[tuple[float, float, str]] = []
    for start, end, text in sorted(lines):
        pending.append((start, end, text.strip()))
        if not punctuated or text.rstrip().endswith(SENTENCE_END):
            sentences.append(_joined(pending))
            pending = []
    if pending:
        sentences.append(_joined(pending))
    return [s for s in sentences if s.words]


def _joined(lines: list[tuple[float, float, str]]) -> Sentence:
    return Sentence(lines[0][0], lines[-1][1], " ".join(text for _, _, text in lines if text))


def pick_spans(sentences: Sequence[Sentence], count: int, min_s: float = 15.0,
               max_s: float = 60.0) -> list[Span]:
    """``count`` non-overlapping clips with the best total score, in time order (see the module
    doc)."""
    count = min(count, len(sentences))
    tiers = (lambda d: min_s <= d <= max_s, lambda d: d <= max_s, lambda d: True)
    for tier, fits in enumerate(tiers):
        longest = 1 if tier == 2 else MAX_RUN_SENTENCES
        runs = [(i, j) for i in range(len(sentences))
                for j in range(i, min(len(sentences), i + longest))
                if fits(sentences[j].end - sentences[i].start)]
        chosen = _best_runs(sentences, runs, count)
        if len(chosen) == count:
            return [Span(tuple(sentences[i:j + 1])) for i, j in chosen]
    return []


def _best_runs(sentences: Sequence[Sentence], runs: list[tuple[int, int]],
               count: int) -> list[tuple[int, int]]:
    """Exactly ``count`` non-overlapping runs with the highest total score (empty if impossible).

    ``best[i][c]``: the best total using sentences from ``i`` on with ``c`` runs still to place.
    """
    n = len(sentences)
    starting: dict[int, list[tuple[int, float]]] = {}
    for i, j in runs:
        starting.setdefault(i, []).append((j, Span(tuple(sentences[i:j + 1])).score))
    impossible = float("-inf")
    best = [[impossible] * (count + 1) for _ in range(n + 1)]
    step: list[list[int | None]] = [[None] * (count + 1) for _ in range(n + 1)]
    for i in range(n, -1, -1):
        best[i][0] = 0.0
        if i == n:
            continue
        for c in range(1, count + 1):
            best[i][c], step[i][c] = best[i + 1][c], None  # skip sentence i
            for j, score in starting.get(i, []):
                total = best[j + 1][c - 1] + score
                if total > best[i][c]:
                    best[i][c], step[i][c] = total, j
    if best[0][count] == impossible:
        return []
    chosen, i, c = [], 0, count
    while c:
        j = step[i][c]
        if j is None:
            i += 1
        else:
            chosen.append((i, j))
            i, c = j + 1, c - 1
    return chosen


def title_phrase(text: str) -> str:
    """A few of ``text``'s words in order: its most telling clause (a label such as "Tip number
    one:" loses to what follows it), cut to nine words; a filler opener ("So", "Now") dropped
    and no small word left dangling at the end."""
    clauses = [words for words in map(WORD.findall, CLAUSE.split(text)) if words]
    short = [words for words in clauses
             if len(words) <= MAX_TITLE_WORDS and _content_words(words) >= 2]
    kept = max(short or clauses, key=_telling)[:MAX_TITLE_WORDS]
    while len(kept) > 2 and (kept[0].lower() in CONJUNCTIONS or (
            kept[0].lower() in OPENERS and kept[1].lower() not in SMALL_WORDS)):
        kept = kept[1:]
    while len(kept) > 1 and kept[-1].lower() in DANGLING:
        kept = kept[:-1]
    phrase = " ".join(kept)
    return phrase[:1].upper() + phrase[1:]


def _content_words(words: list[str]) -> int:
    return sum(word.lower() not in SMALL_WORDS for word in words)


def _telling(words: list[str]) -> tuple[bool, int]:
    """A main clause before a label ("Tip number one") or a dependent one ("when ..."), then
    the one with more content words."""
    first = words[0].lower()
    return first not in LABELS and first not in DEPENDENT, _content_words(words)


def _same(a: str, b: str) -> bool:
    return [w.lower() for w in WORD.findall(a)] == [w.lower() for w in WORD.findall(b)]


def titles_for(sentences: Sequence[Sentence], count: int) -> list[str]:
    """Titles from the best-scoring sentences, best first, no two alike; when there are fewer
    sentences than titles asked for, their other clauses make the rest."""
    ranked = sorted(sentences, key=lambda s: (-s.score, s.start))
    titles = [title_phrase(s.text) for s in ranked]
    titles += [title_phrase(" ".join(words)) for s in ranked
               for words in map(WORD.findall, CLAUSE.split(s.text))
               if _content_words(words) >= 2 and words[0].lower() not in LABELS]
    return list(dict.fromkeys(titles))[:count]


def caption_for(sentences: Sequence[Sentence], max_characters: int = 300) -> str:
    """The best sentence, then a call to action, within ``max_characters``."""
    if not sentences:
        return CALL_TO_ACTION[:max_characters]
    best = max(sentences, key=lambda s: (s.score, -s.start)).text
    caption = f"{best} {CALL_TO_ACTION}"
    if len(caption) <= max_characters:
        return caption
    return best[:max_characters].rsplit(" ", 1)[0] if len(best) > max_characters else best


def hashtags_for(sentences: Sequence[Sentence], count: int) -> list[str]:
    """``#Word`` for the content words used most, longer words weighing more (a seven-letter
    word said twice beats a four-letter one said three times); first use breaks ties."""
    words = [w.lower() for s in sentences for w in s.words
             if w.lower() not in DANGLING | GENERIC_WORDS and len(w) > 3 and not w.isdigit()]
    frequent = sorted(Counter(words).items(),
                      key=lambda item: (-item[1] * min(len(item[0]), 8), words.index(item[0])))
    return ["#" + word.replace("'", "").replace("-", " ").title().replace(" ", "")
            for word, _ in frequent[:count]]
