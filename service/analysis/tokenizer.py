"""A streaming, Unicode-aware word tokenizer.

A word is a run of letters and digits (with their combining marks) that may hold inner apostrophes or hyphens:
``don't``, ``rock-n-roll``. Text is NFC-normalised first so ``e`` + U+0301 and ``é`` are the same word.

Text arrives in chunks of any size. Only the part up to the last whitespace of what has arrived is processed; the
rest is carried into the next chunk. Whitespace never starts a canonical composition and always ends a word, so
normalising and tokenising the pieces gives exactly what the whole text would. Memory is bounded by the carry (at
most ``max_carry`` characters) and the caller's vocabulary, never by the size of the upload. The one exception: a
run of more than ``max_carry`` (64 Ki) characters without whitespace is cut, after punctuation when it has some,
else between two characters that cannot combine, so a "word" that long is counted in pieces.
"""

from __future__ import annotations

import re
import unicodedata

import regex

# The ASCII pattern is the Unicode one restricted to ASCII; the stdlib engine runs it about twice as fast.
ASCII_WORD = re.compile(r"[A-Za-z0-9]+(?:['\-][A-Za-z0-9]+)*")
# Join controls (ZWNJ, ZWJ) belong inside words in Persian, Indic scripts and emoji sequences.
_UNICODE_WORD = regex.compile(
    r"[\p{L}\p{N}][\p{L}\p{N}\p{M}\p{Join_Control}]*(?:['’\-][\p{L}\p{N}][\p{L}\p{N}\p{M}\p{Join_Control}]*)*"  # noqa: RUF001
)
_WHITESPACE = regex.compile(r"\s", flags=regex.REVERSE)
# What ends a word, whatever else the text holds: the batch pipeline cuts uploads into shards only after one.
WHITESPACE = _WHITESPACE
# Where a run without whitespace outgrows the carry, cut after ASCII punctuation that cannot join a word or start
# a canonical composition ('<', '=', '>' combine with U+0338; apostrophe and hyphen can sit inside a word).
_FORCED_CUT = regex.compile(r"[!\"#$%&()*+,./:;?@\[\\\]^_`{|}~]", flags=regex.REVERSE)

DEFAULT_MAX_CARRY = 64 * 1024


class Tokenizer:
    """Feed text chunks, get back the words that are complete so far; ``finish`` flushes the rest."""

    def __init__(
        self,
        *,
        lowercase: bool = True,
        min_length: int = 1,
        stopwords: frozenset[str] = frozenset(),
        max_carry: int = DEFAULT_MAX_CARRY,
    ) -> None:
        self.lowercase = lowercase
        self.min_length = min_length
        self.stopwords = stopwords
        self.max_carry = max_carry
        self._carry = ""

    def feed(self, text: str) -> list[str]:
        pending = self._carry + text if self._carry else text
        cut = _last_boundary(pending, self.max_carry)
        self._carry = pending[cut:]
        return self._words(pending[:cut]) if cut else []

    def finish(self) -> list[str]:
        rest, self._carry = self._carry, ""
        return self._words(rest)

    def _words(self, text: str) -> list[str]:
        if text.isascii():
            words = ASCII_WORD.findall(text.lower() if self.lowercase else text)
        else:
            if not unicodedata.is_normalized("NFC", text):
                text = unicodedata.normalize("NFC", text)
            words = _UNICODE_WORD.findall(text)
            if self.lowercase:
                words = [word.lower() for word in words]
        if self.min_length > 1:
            words = [word for word in words if len(word) >= self.min_length]
        if self.stopwords:
            stop = self.stopwords
            words = [word for word in words if (word if self.lowercase else word.lower()) not in stop]
        return words


def _last_boundary(text: str, max_carry: int) -> int:
    """Index just after the last safe cut in ``text``; 0 when everything must wait for more input."""
    match = _WHITESPACE.search(text)
    if match:
        cut = match.end()
        if len(text) - cut <= max_carry:
            return cut
    elif len(text) <= max_carry:
        return 0
    # A run longer than the carry allows: cut it rather than let memory follow the upload. Such a run is one
    # "word" of over max_carry characters, which is then counted in pieces; a letter keeps its marks.
    tail_start = len(text) - max_carry
    forced = _FORCED_CUT.search(text, tail_start)
    if forced:
        return forced.end()
    for index in range(len(text) - 1, tail_start, -1):
        if _starts_cluster(text[index]):
            return index
    return len(text)


def _starts_cluster(char: str) -> bool:
    """True when nothing before ``char`` can combine with it: not a mark, join control or Hangul vowel/final."""
    return (
        unicodedata.combining(char) == 0
        and unicodedata.category(char)[0] != "M"
        and not "\u1160" <= char <= "\u11ff"
        and char not in "\u200c\u200d"
    )
