"""The analysis pipeline over a byte stream: decode → tokenize → consume, one chunk at a time.

The consumer is what the caller wants from the words: a ``FirstWords`` sample for tokenizing, the words themselves
for the batch tokenize stage. Frequencies are counted inside a ``CountingTokenizer`` instead, which the synchronous
endpoints and the batch map share. Each stage's busy time is measured so the web layer can report it (tracing spans,
metrics) without this module knowing about either; a counting tokenizer's counting time is reported as consuming.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from service.analysis.stopwords import DEFAULT as DEFAULT_STOPWORDS
from service.analysis.stopwords import LISTS
from service.analysis.tokenizer import CountingTokenizer, Tokenizer
from service.analysis.wordcount import WordCount


class InvalidText(ValueError):
    """The bytes are not UTF-8; ``offset`` is where decoding failed."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"body is not valid UTF-8 (first bad byte at offset {offset})")
        self.offset = offset


@dataclass(frozen=True)
class AnalysisOptions:
    lowercase: bool = True
    min_length: int = 1
    stopwords: str = DEFAULT_STOPWORDS

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(lowercase=self.lowercase, min_length=self.min_length, stopwords=LISTS[self.stopwords])

    def counting_tokenizer(self, counts: WordCount) -> CountingTokenizer:
        return CountingTokenizer(
            counts, lowercase=self.lowercase, min_length=self.min_length, stopwords=LISTS[self.stopwords]
        )


@dataclass
class StreamStats:
    bytes: int = 0
    tokenize_ns: int = 0
    consume_ns: int = 0


@dataclass
class Analysis:
    stats: StreamStats
    counts: WordCount


@dataclass
class FirstWords:
    """Keeps the first ``limit`` words and counts them all."""

    limit: int
    words: list[str] = field(default_factory=list)
    total: int = 0

    def __call__(self, words: list[str]) -> None:
        self.total += len(words)
        room = self.limit - len(self.words)
        if room > 0:
            self.words.extend(words[:room])


def stream_words(chunks: Iterable[bytes], tokenizer: Tokenizer, consume: Callable[[list[str]], None]) -> StreamStats:
    """Decode UTF-8 chunks, tokenize them and hand each batch of words to ``consume``; raises ``InvalidText``."""
    stats = StreamStats()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    clock = time.perf_counter_ns

    def step(chunk: bytes, final: bool) -> None:
        started = clock()
        counted = tokenizer.count_ns
        try:
            text = decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            pending = len(decoder.getstate()[0]) if final else 0
            raise InvalidText(stats.bytes - pending + error.start) from None
        words = tokenizer.feed(text)
        if final:
            words += tokenizer.finish()
        tokenized = clock()
        consume(words)
        stats.bytes += len(chunk)
        counting = tokenizer.count_ns - counted  # counted while tokenizing: reported with the consumer's time
        stats.tokenize_ns += tokenized - started - counting
        stats.consume_ns += clock() - tokenized + counting

    for chunk in chunks:
        step(chunk, final=False)
    step(b"", final=True)
    return stats


def analyze_chunks(chunks: Iterable[bytes], options: AnalysisOptions, max_unique: int | None = None) -> Analysis:
    """Word frequencies of a UTF-8 byte stream; raises ``InvalidText`` or ``VocabularyTooLarge``."""
    counts = WordCount(max_unique)
    return Analysis(stream_words(chunks, options.counting_tokenizer(counts), _counted_already), counts)


def _counted_already(words: list[str]) -> None:
    """A counting tokenizer's words: none, it counted them itself."""


def first_words(chunks: Iterable[bytes], options: AnalysisOptions, limit: int) -> tuple[FirstWords, StreamStats]:
    sample = FirstWords(limit)
    return sample, stream_words(chunks, options.tokenizer(), sample)
