"""The tokenizer: examples of what a word is, and properties that hold for any text and any chunking."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from service.analysis import AnalysisOptions, Tokenizer, WordCount, analyze_chunks
from service.analysis.stopwords import ENGLISH
from service.analysis.tokenizer import _last_boundary


def tokenize(chunks: Iterable[str], **options: object) -> list[str]:
    """Every word of a text given in chunks, through the tokenizer's own feed/finish protocol."""
    tokenizer = Tokenizer(**options)  # type: ignore[arg-type]
    found = [word for chunk in chunks for word in tokenizer.feed(chunk)]
    return found + tokenizer.finish()


def words(text: str, **options: object) -> list[str]:
    return tokenize([text], **options)


def test_what_a_word_is() -> None:
    assert words("Hello, world! It's rock-n-roll; 3.14 and x_y") == [
        "hello",
        "world",
        "it's",
        "rock-n-roll",
        "3",
        "14",
        "and",
        "x",
        "y",
    ]
    assert words("'quoted' -dash- trailing' end-") == ["quoted", "dash", "trailing", "end"]
    assert words("l’été déjà") == ["l’été", "déjà"]  # typographic apostrophe inside a word


def test_unicode_scripts_and_marks() -> None:
    assert words("Ελληνικά русский 中文 हिन्दी") == ["ελληνικά", "русский", "中文", "हिन्दी"]
    # NFD input is composed first: both spellings are one word.
    assert words(unicodedata.normalize("NFD", "café") + " café") == ["café", "café"]


def test_options() -> None:
    assert words("The THE the", lowercase=False) == ["The", "THE", "the"]
    assert words("a an ant", min_length=2) == ["an", "ant"]
    assert words("The cat and THE hat", stopwords=ENGLISH) == ["cat", "hat"]
    assert words("The cat", lowercase=False, stopwords=ENGLISH) == ["cat"]


def test_word_split_across_chunks() -> None:
    assert tokenize(["hel", "lo wo", "rld"]) == ["hello", "world"]
    # A combining accent arriving in the next chunk still composes with its letter.
    assert tokenize(["cafe", "\u0301 ok"]) == ["café", "ok"]


def test_carry_is_bounded_for_a_run_without_whitespace() -> None:
    tokenizer = Tokenizer(max_carry=100)
    produced: list[str] = []
    for _ in range(50):
        produced += tokenizer.feed("abc," * 10)
        assert len(tokenizer._carry) <= 100
    produced += tokenizer.finish()
    assert produced == ["abc"] * 500  # cut after punctuation: no word was split


def test_forced_cut_without_any_separator_keeps_letters_with_their_marks() -> None:
    cut = _last_boundary("x" * 50, max_carry=10)
    assert 40 <= cut <= 50  # flush rather than grow
    accented = "e\u0301" * 40
    cut = _last_boundary(accented, max_carry=10)
    assert len(accented) - cut <= 10 and accented[cut] == "e"  # never between a letter and its accent
    tokenizer = Tokenizer(max_carry=10)
    pieces = tokenizer.feed(accented) + tokenizer.finish()
    assert pieces and all(not unicodedata.combining(piece[0]) for piece in pieces)
    assert "".join(pieces) == unicodedata.normalize("NFC", accented)  # cut into pieces, nothing lost


def test_join_controls_stay_inside_words() -> None:
    assert words("می\u200cخواهم") == ["می\u200cخواهم"]  # Persian, with a zero-width non-joiner


def test_wordcount_ranking_is_stable() -> None:
    counts = WordCount()
    counts.add(["b", "a", "c", "a", "b", "d"])
    assert counts.most_common(3) == [("a", 2), ("b", 2), ("c", 1)]
    assert counts.most_common() == [("a", 2), ("b", 2), ("c", 1), ("d", 1)]
    assert (counts.total, counts.unique) == (6, 4)


# Text that exercises the hard parts: combining marks, apostrophes, hyphens, every kind of space, any code point.
_interesting = st.sampled_from(list("aé\u0301\u0308'’- \t\n\u00a0\u2028.,<=>\u0338Σς가\u1161\u11a8İ1"))
texts = st.text(alphabet=st.one_of(_interesting, st.characters(codec="utf-8")), max_size=300)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_never_fails_and_counts_sum_to_the_total(text: str) -> None:
    analysis = analyze_chunks([text.encode()], AnalysisOptions())
    counts = analysis.counts
    assert sum(count for _, count in counts.most_common()) == counts.total
    assert counts.total == len(words(text))


@settings(max_examples=300, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=1200), max_size=12))
def test_chunk_boundaries_never_change_the_result(text: str, cuts: list[int]) -> None:
    data = text.encode()
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole = analyze_chunks([data], AnalysisOptions())
    pieces = analyze_chunks(chunks, AnalysisOptions())
    assert pieces.counts.most_common() == whole.counts.most_common()
    assert pieces.stats.bytes == len(data)


@settings(max_examples=200, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_text_chunking_matches_normalising_the_whole(text: str, cuts: list[int]) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert tokenize(chunks) == words(text)
