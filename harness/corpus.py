"""Deterministic English-like text for the benches and the tests that send prose: Zipf-like words (a few very common,
a long tail) in sentences with commas and line breaks, as prose would give the tokenizer; the same seed always yields
the same bytes, so runs on different days measure the same work."""

from __future__ import annotations

import itertools
import random

from service.analysis.stopwords import ENGLISH

MIB = 1024 * 1024  # the unit the benches size their text in

# Consonant-vowel pairs and a few endings: made-up words that look like words (no dictionary needed).
_SYLLABLES = (*(c + v for c in "bdfklmnprstvz" for v in "aeiou"), "tion", "ment", "ing", "er", "ly", "al")
# Sprinkled in when non-ASCII text is asked for: composed and decomposed accents, CJK, an inner apostrophe.
_UNICODE_WORDS = ("café", "naïve", "Zürich", "e\u0301te\u0301", "東京", "Ελλάδα", "don’t", "straße")  # noqa: RUF001


def vocabulary(size: int = 5000, seed: int = 7) -> list[str]:
    """Stop words first (the most frequent ranks), then made-up words of one to four syllables."""
    rng = random.Random(seed)
    common = sorted(ENGLISH)
    rng.shuffle(common)  # ranks are random, not alphabetical
    seen = set(common)
    words: list[str] = []
    while len(common) + len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return common + words


def generate_text(size: int, seed: int = 1, unicode_share: float = 0.0) -> bytes:
    """About ``size`` bytes (exactly ``size`` when possible, cut at a word boundary) of UTF-8 prose."""
    rng = random.Random(seed)
    vocab = vocabulary()
    weights = list(itertools.accumulate(1.0 / rank for rank in range(1, len(vocab) + 1)))
    parts: list[str] = []
    produced = 0
    while produced < size:
        words = rng.choices(vocab, cum_weights=weights, k=4096)
        if unicode_share:
            words = [rng.choice(_UNICODE_WORDS) if rng.random() < unicode_share else w for w in words]
        line: list[str] = []
        for index, word in enumerate(words):
            if index % 11 == 0:
                word = word.capitalize()
            line.append(word)
            if index % 11 == 10:
                line[-1] += "."
            elif index % 5 == 3:
                line[-1] += ","
            if len(line) == 12:
                text = " ".join(line) + "\n"
                parts.append(text)
                produced += len(text.encode())
                line = []
                if produced >= size:
                    break
    data = "".join(parts).encode()
    if len(data) > size:
        cut = data.rfind(b" ", 0, size)
        data = data[:cut] + b"\n" if cut > 0 else data[:size]
    return data
