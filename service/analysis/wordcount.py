"""Word frequencies: a Counter fed in batches, with the ranking the API reports."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping


class VocabularyTooLarge(ValueError):
    """More distinct words than the counter may hold: memory is bounded by the vocabulary, so the vocabulary is."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the text has more than {limit} distinct words")
        self.limit = limit


class WordCount:
    def __init__(self, max_unique: int | None = None) -> None:
        self._counts: Counter[str] = Counter()
        self.total = 0
        self.max_unique = max_unique

    def add(self, words: list[str]) -> None:
        self._counts.update(words)  # C-accelerated counting loop
        self.total += len(words)
        self._check_cap()

    def add_counts(self, counts: Mapping[str, int]) -> None:
        """Words already counted (word → occurrences): what ``add`` does for their list, per distinct word."""
        self._counts.update(counts)
        self.total += sum(counts.values())
        self._check_cap()

    def _check_cap(self) -> None:
        if self.max_unique is not None and len(self._counts) > self.max_unique:
            raise VocabularyTooLarge(self.max_unique)

    @property
    def unique(self) -> int:
        return len(self._counts)

    def most_common(self, limit: int | None = None) -> list[tuple[str, int]]:
        """Highest count first, ties alphabetical, so answers are stable; O(n log limit) for a top-N."""
        if limit is None or limit >= len(self._counts):
            return ranked(self._counts.items())
        return heapq.nsmallest(limit, self._counts.items(), key=_rank_key)

    def by_word(self) -> list[tuple[str, int]]:
        """Alphabetical (code point order, which is also UTF-8 byte order): what a k-way merge of counts needs."""
        return sorted(self._counts.items())


def ranked(items: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """``(word, count)`` pairs in the API's ranking: highest count first, ties alphabetical."""
    return sorted(items, key=_rank_key)


def _rank_key(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])
