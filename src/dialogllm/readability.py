"""What makes a dialogue's text readable: the measures and the repairs.

This module owns the one definition of each defect the dialogue-quality benchmark
counts and the dialogue guards act on, so that what is measured and what is guarded
never drift apart:

* **echo**: a text whose word trigrams overlap ≥ 50 % with the trigrams of an earlier
  text (``|T_i ∩ T_j| / |T_i|``); a text of fewer than three words echoes when its
  words equal an earlier text's;
* **loop**: a text that repeats one of its own word trigrams three times or more;
* **junk**: digits or timestamps only, a placeholder-like token (``reason_116``), a
  model's special token (``<start_of_image>``, ``<|eot|>``), or no word of two letters;
* **cut**: a text (with words) that does not end at a sentence end (``. ! ? …``,
  optionally followed by a closing quote or bracket);
* **copies**: a text repeating ≥ 80 % of its trigrams from one of the given texts.

The repairs: :func:`strip_special_tokens` and :func:`finish_sentence`. The rule: a
repair only ever removes text (and closes a sentence with a full stop); it never
invents words.

>>> echoes("Cars must go.", ["Cars must go now."])
True
>>> finish_sentence("Cars are loud. Bikes are quiet and")
'Cars are loud.'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "ECHO_OVERLAP",
    "copies",
    "echoed_text",
    "echoes",
    "finish_sentence",
    "is_cut",
    "is_junk",
    "looped_phrase",
    "loops",
    "overlap",
    "strip_special_tokens",
    "trigrams",
    "words",
]

ECHO_OVERLAP = 0.5
"""Share of a text's trigrams found in an earlier text from which it echoes."""

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+", re.UNICODE)
# a model's special tokens (<eos>, <|im_end|>, <start_of_image>) and the bare HTML
# tags a small model copies from the web (<b>, </center>, <br />)
_SPECIAL = re.compile(
    r"<\|?/?[a-z_]+(?:_[a-z]+)*\s*/?\|?>|<start_of_\w+>|<end_of_\w+>", re.I
)
_PLACEHOLDER = re.compile(r"\b[a-z]+_\d+\b", re.I)
_NUMERIC = re.compile(r"^[\s\d:.,/\-+T]*$")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s*$")
_SENTENCE_BREAK = re.compile(r"[.!?…][\"'”’)\]]*(?=\s|$)")
_DANGLING = frozenset(
    (
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "so",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "as",
        "that",
        "which",
        "who",
        "whose",
        "than",
        "then",
        "if",
        "because",
        "while",
        "when",
        "where",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "these",
        "those",
        "not",
        "no",
        "very",
        "more",
        "most",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "must",
        "i",
        "we",
        "he",
        "she",
        "they",
    )
)


_ASKING = frozenset(
    {"should", "is", "are", "do", "does", "did", "can", "could", "would", "will"}
    | {"what", "why", "how", "who", "where", "when", "which"}
)


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``.

    >>> words("It's 5 o'clock!")
    ["it's", '5', "o'clock"]
    """
    return [w.lower() for w in _WORD.findall(text)]


def trigrams(text: str) -> list[tuple[str, str, str]]:
    """Word trigrams of ``text``, in order."""
    w = words(text)
    return list(zip(w, w[1:], w[2:], strict=False))


def overlap(text: str, other: str) -> float:
    """Share of ``text``'s trigrams that ``other`` also has (0 without trigrams)."""
    mine = set(trigrams(text))
    theirs = set(trigrams(other))
    return len(mine & theirs) / len(mine) if mine and theirs else 0.0


def echoed_text(text: str, earlier: Sequence[str]) -> str | None:
    """The first of ``earlier`` that ``text`` echoes (see the module), or ``None``.

    >>> echoed_text("hello", ["Hello!"])
    'Hello!'
    """
    mine = set(trigrams(text))
    if not mine:
        own = words(text)
        return next((e for e in earlier if own and own == words(e)), None)
    for other in earlier:
        if overlap(text, other) >= ECHO_OVERLAP:
            return other
    return None


def echoes(text: str, earlier: Sequence[str]) -> bool:
    """Whether ``text`` echoes one of the ``earlier`` texts (see the module)."""
    return echoed_text(text, earlier) is not None


def looped_phrase(text: str) -> str | None:
    """The trigram ``text`` repeats three times or more, as words, or ``None``.

    >>> looped_phrase("I have no money, I have no money, I have no money")
    'i have no'
    """
    counts = Counter(trigrams(text))
    if not counts:
        return None
    gram, n = counts.most_common(1)[0]
    return " ".join(gram) if n >= 3 else None


def loops(text: str) -> bool:
    """Whether ``text`` repeats one of its own word trigrams three times or more."""
    return looped_phrase(text) is not None


def is_junk(text: str) -> bool:
    """Digits or timestamps only, placeholders, special tokens, or no real word.

    >>> is_junk("reason_116"), is_junk("Trains are faster.")
    (True, False)
    """
    if _NUMERIC.match(text):
        return True
    if _SPECIAL.search(text) or _PLACEHOLDER.search(text):
        return True
    return not any(len(w) >= 2 and not w.isdigit() for w in words(text))


def is_cut(text: str) -> bool:
    """Whether ``text`` (with words) stops before a sentence end."""
    return bool(words(text)) and not _SENTENCE_END.search(text)


def copies(text: str, texts: Sequence[str]) -> bool:
    """Whether ``text`` copies one of ``texts`` (≥ 80 % of its trigrams)."""
    if not trigrams(text):
        return any(words(text) == words(t) for t in texts if words(text))
    return any(overlap(text, t) >= 0.8 for t in texts)


def strip_special_tokens(text: str) -> str:
    """``text`` without a model's special tokens, whitespace runs folded.

    >>> strip_special_tokens("<start_of_image><start_of_image>Please, sit.<eos>")
    'Please, sit.'
    >>> strip_special_tokens("It is late.</b></font></center><br /> Go home.")
    'It is late. Go home.'
    """
    if "<" not in text:
        return text.strip()
    return " ".join(_SPECIAL.sub(" ", text).split())


def finish_sentence(text: str) -> str:
    """``text`` ending at a sentence end: cut back to its last complete sentence; a
    text with none loses its dangling words (``and``, ``the``, a trailing comma) and
    gets a full stop (a question mark when it opens like a question). Text that
    already ends a sentence, or has no words, is returned as it is.

    >>> finish_sentence("Should cities ban cars from a")
    'Should cities ban cars?'
    >>> finish_sentence("Trains are fast. Buses reach")
    'Trains are fast.'
    """
    text = text.strip()
    if not is_cut(text):
        return text
    ends = list(_SENTENCE_BREAK.finditer(text))
    if ends and len(words(text[: ends[-1].end()])) >= 2:
        return text[: ends[-1].end()].strip()
    kept = text.split()
    while len(kept) > 1 and (
        kept[-1].lower().strip(",;:-–—\"'(") in _DANGLING or not words(kept[-1])
    ):
        kept.pop()
    body = " ".join(kept).rstrip(",;:-–—([{ \"'")
    if not body:
        return text
    first = words(body)[:1]
    return body + ("?" if first and first[0] in _ASKING else ".")
