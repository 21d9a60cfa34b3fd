"""The word count's counting tokenizer against the word list it replaced: for any text, options, chunking and
vocabulary cap, the same counts, the same ranking and the same error on the same chunk."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.analysis import AnalysisOptions, VocabularyTooLarge, WordCount, analyze_chunks
from service.analysis.pipeline import InvalidText, stream_words

Count = Callable[[Iterable[bytes], AnalysisOptions, int | None], WordCount]


def counting_tokenizer_count(chunks: Iterable[bytes], options: AnalysisOptions, max_unique: int | None) -> WordCount:
    return analyze_chunks(chunks, options, max_unique).counts


def word_list_count(chunks: Iterable[bytes], options: AnalysisOptions, max_unique: int | None) -> WordCount:
    """The count as it was before the counting tokenizer: every word listed by the tokenizer, then counted."""
    counts = WordCount(max_unique)
    stream_words(chunks, options.tokenizer(), counts.add)
    return counts


def outcome(count: Count, chunks: list[bytes], options: AnalysisOptions, max_unique: int | None) -> tuple[object, int]:
    """The counts (or the error's type and message) and how many chunks were read before it."""
    read = 0

    def reading() -> Iterator[bytes]:
        nonlocal read
        for chunk in chunks:
            read += 1
            yield chunk

    try:
        counts = count(reading(), options, max_unique)
    except (VocabularyTooLarge, InvalidText) as error:
        return (type(error), str(error)), read
    return (counts.most_common(), counts.by_word(), counts.total, counts.unique), read


# Separators, apostrophes and hyphens alone and doubled, tokens of several words, stop words in any case, Unicode.
_PUNCTUATION = [*"'’-.,;!_\x1c\x0b\x00", " ", "\t", "\n", "--", "'-", "-'", "''"]
_WORDS = ["a", "Zq09", "é", "a--b--c", "x'y''z", "The", "the", "AND", "don't", "rock-n-roll", "e\u0301", "東京", "İ"]
_pieces = st.sampled_from([*_PUNCTUATION, *_WORDS, "Ελληνικά", "x" * 90])
_texts = st.lists(st.one_of(_pieces, st.characters(codec="utf-8")), max_size=150).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    text=_texts,
    cuts=st.lists(st.integers(0, 600), max_size=6),
    lowercase=st.booleans(),
    min_length=st.integers(1, 3),
    stopwords=st.sampled_from(["none", "en"]),
    below_cap=st.one_of(st.none(), st.integers(-1, 3)),
    bad_tail=st.booleans(),
)
@example(text="a--b--c x'y''z", cuts=[], lowercase=True, min_length=1, stopwords="none", below_cap=1, bad_tail=True)
def test_the_count_equals_the_word_list_path(
    text: str, cuts: list[int], lowercase: bool, min_length: int, stopwords: str, below_cap: int | None, bad_tail: bool
) -> None:
    options = AnalysisOptions(lowercase=lowercase, min_length=min_length, stopwords=stopwords)
    data = text.encode() + (b" " if bad_tail else b"")  # every word complete before the bad chunk
    bounds = [0, *sorted(cut for cut in cuts if cut < len(data)), len(data)]
    # A bad byte in a last chunk of its own: which error wins shows on which chunk the cap tripped.
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)] + ([b" z \xff"] if bad_tail else [])
    # The cap around the text's vocabulary, where tripping it early or late would show.
    cap = None if below_cap is None else max(0, word_list_count([data], options, None).unique - below_cap)
    assert outcome(counting_tokenizer_count, chunks, options, cap) == outcome(word_list_count, chunks, options, cap)


def test_a_token_of_several_words_trips_the_cap_on_its_chunk() -> None:
    # One token, three words: the cap is passed on the first chunk, before the bad byte of the second.
    with pytest.raises(VocabularyTooLarge):
        analyze_chunks([b"a--b--c ", b"\xff"], AnalysisOptions(), 2)


def test_counting_time_is_reported_as_consuming() -> None:
    analysis = analyze_chunks([b"some words and some more words " * 2000], AnalysisOptions())
    assert analysis.stats.consume_ns > 0
    assert analysis.stats.tokenize_ns > 0
