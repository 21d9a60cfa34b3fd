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

import functools
import re
import string
import time
import unicodedata
from collections import Counter

import regex

from service.analysis.wordcount import WordCount

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

    count_ns = 0  # time spent counting inside the tokenizer (a ``CountingTokenizer``'s), reported as counting

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


class CountingTokenizer(Tokenizer):
    """The tokenizer (same carry, same cuts, same words) counting into ``counts`` as it goes, its word lists empty.

    ASCII text is counted by distinct token instead of word by word: every character that cannot be in a word
    becomes a space, ``split`` and ``Counter`` do the rest in C, and only a token holding an apostrophe or a hyphen
    goes through the word pattern — once per distinct token, when the tokens are folded into ``counts`` (in
    ``finish``, or sooner when the vocabulary cap may have been passed). The same words as ``ASCII_WORD.findall``: a
    match never spans a space, and the pattern looks at nothing outside its match. Other text is counted from the
    tokenizer's own words.
    """

    def __init__(self, counts: WordCount, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.counts = counts
        self._spaces = _ascii_table(self.lowercase)
        self._tokens: Counter[str] = Counter()  # ASCII text's tokens, not yet folded into ``counts``
        self._splits = 0  # an upper bound on the extra words the unfolded tokens may split into

    def finish(self) -> list[str]:
        super().finish()
        self.fold()
        return []

    def _words(self, text: str) -> list[str]:
        cap = self.counts.max_unique
        if text.isascii():
            spaced = text.translate(self._spaces)
            tokens = spaced.split()
            started = time.perf_counter_ns()
            self._tokens.update(tokens)
            self.count_ns += time.perf_counter_ns() - started
            if cap is not None:
                # A token holds a second word only after two separators in a row ("a--b"): counting such pairs
                # keeps the check below an upper bound on the words, so the cap trips on the same chunk as
                # counting word by word.
                self._splits += sum(spaced.count(pair) for pair in _DOUBLE_SEPARATORS)
        else:
            words = super()._words(text)
            started = time.perf_counter_ns()
            self.counts.add(words)
            self.count_ns += time.perf_counter_ns() - started
        if cap is not None and self.counts.unique + len(self._tokens) + self._splits > cap:
            self.fold()
        return []

    def fold(self) -> None:
        """The tokens so far into ``counts`` as words; raises ``VocabularyTooLarge``."""
        started = time.perf_counter_ns()
        try:
            self._fold()
        finally:
            self.count_ns += time.perf_counter_ns() - started

    def _fold(self) -> None:
        tokens, self._tokens, self._splits = self._tokens, Counter(), 0
        for token in [token for token in tokens if "'" in token or "-" in token]:
            occurrences = tokens.pop(token)
            for word in ASCII_WORD.findall(token):
                tokens[word] += occurrences
        if self.min_length > 1 or self.stopwords:
            for word in [word for word in tokens if not self._kept(word)]:
                del tokens[word]
        self.counts.add_counts(tokens)

    def _kept(self, word: str) -> bool:
        return len(word) >= self.min_length and (word if self.lowercase else word.lower()) not in self.stopwords


_DOUBLE_SEPARATORS = ("--", "''", "'-", "-'")


@functools.cache
def _ascii_table(lowercase: bool) -> dict[int, str]:
    """ASCII letters and digits (lowercased or not), apostrophe and hyphen kept; every other ASCII character a space."""
    kept = string.ascii_letters + string.digits + "'-"
    return {code: (chr(code).lower() if lowercase else chr(code)) if chr(code) in kept else " " for code in range(128)}


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
