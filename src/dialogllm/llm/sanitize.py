"""Cleaning model output before a person sees it.

The rule: anything an LLM wrote passes through :func:`sanitize_text` before it is
shown in a terminal or a page — control and escape characters could move the cursor,
hide text or ring bells, and an unbounded reply could flood the screen.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["sanitize_text"]

# C0/C1 controls except tab and newline, DEL, and the bidi overrides/isolates.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?")
_BLANK_RUN = re.compile(r"\n{3,}")


def sanitize_text(text: str, *, max_chars: int = 4000, ellipsis: str = "…") -> str:
    """Strip control characters and ANSI escapes, normalize, and bound the length.

    Tabs become spaces, ``\\r\\n`` becomes ``\\n``, runs of blank lines shrink to one,
    and text longer than ``max_chars`` is cut and ends with ``ellipsis``.

    >>> sanitize_text("hi\\x1b[31m red\\x07\\r\\n")
    'hi red'
    >>> sanitize_text("abcdef", max_chars=4)
    'abc…'
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    text = unicodedata.normalize("NFC", text)
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.replace("\t", " "))
    text = _BLANK_RUN.sub("\n\n", text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - len(ellipsis)].rstrip() + ellipsis
    return text
