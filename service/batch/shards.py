"""One upload split into shards: a plan of byte ranges, a map that counts one range, a merge of the partial counts.

- **Plan.** K byte ranges, K from the upload's size and a target shard size (at most ``max_shards``). Each cut sits
  just after a whitespace character — what the tokenizer splits on (its own pattern, so the two cannot disagree) —
  found by reading forward from the even split point; whitespace never belongs to a word nor ends inside a UTF-8
  sequence, so no word is split or counted twice and every shard starts on a character. A run without whitespace
  longer than a shard stays whole in one shard. Only the bytes between a split point and the next whitespace are
  read, so planning holds one block whatever the upload's size.
- **Map.** One range through ``service.analysis``'s streaming tokenizer into a capped ``WordCount``, read in chunks
  aligned to the same absolute offsets as the single-process stage (``formats.READ_CHUNK``), so even the
  tokenizer's forced cut of a run over 64 Ki characters falls where it would without shards. The partial result is
  ``partial-<index>.tsv``: a ``#`` + JSON header (index, range, bytes, words, unique), then ``word<TAB>count``
  lines sorted by word — the order a k-way merge needs.
- **Merge.** ``heapq.merge`` over the partial files, equal words summed as they meet: memory holds one line per
  shard plus the totals, and the totals are capped by the same vocabulary limit as the whole text's. Then the
  ranking of ``WordCount`` into ``counts.tsv`` through ``formats``: byte for byte what one process writes.

Every file is written atomically (``formats.atomic_writer``), so a killed map or merge leaves the earlier files
whole and a rerun starts from them.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from service.analysis import AnalysisOptions, VocabularyTooLarge, WordCount
from service.analysis.pipeline import InvalidText, StreamStats, stream_words
from service.analysis.tokenizer import ASCII_WORD, WHITESPACE, Tokenizer
from service.analysis.wordcount import ranked
from service.batch import formats
from service.privatedirs import open_no_follow

DEFAULT_SHARD_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SHARDS = 256
PLAN = "shards.json"
_PARTIAL = "partial-{index:05d}.tsv"
_SCAN_BLOCK = 64 * 1024
_LONGEST_WHITESPACE = 3  # bytes of UTF-8: the block overlap that keeps a separator from straddling two reads


@dataclass(frozen=True)
class Shard:
    index: int
    start: int  # byte offsets in the upload: [start, end)
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Partial:
    """A partial result's header: which shard it counted and what it saw."""

    index: int
    start: int
    end: int
    bytes: int
    words: int
    unique: int


def shard_count(size: int, shard_bytes: int = DEFAULT_SHARD_BYTES, max_shards: int = DEFAULT_MAX_SHARDS) -> int:
    """How many shards to aim for: one per ``shard_bytes`` begun, at least one, at most ``max_shards``."""
    return max(1, min(max_shards, math.ceil(size / shard_bytes)))


@functools.cache
def _separator() -> re.Pattern[bytes]:
    """The tokenizer's whitespace, as UTF-8 byte sequences: every code point of the Basic Multilingual Plane goes
    through the tokenizer's own pattern, so a new separator there is a new cut point here (Unicode has no
    whitespace above U+FFFF; a unit test checks it, so a scan of 64 Ki characters, not 1.1 M, is enough)."""
    every = "".join(chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF)
    chars = sorted(set(WHITESPACE.findall(every)))
    return re.compile(b"|".join(re.escape(char.encode()) for char in chars))


def next_cut(handle: IO[bytes], offset: int, size: int) -> int:
    """The first offset at or after ``offset`` that ends a whitespace character starting there or later; ``size``
    when there is none. UTF-8 is self-synchronising, so a separator's bytes never match inside another character."""
    separator = _separator()
    position = offset
    while position < size:
        handle.seek(position)
        block = handle.read(_SCAN_BLOCK)
        if not block:
            break
        found = separator.search(block)
        if found:
            return position + found.end()
        if position + len(block) >= size:
            break
        position += max(1, len(block) - (_LONGEST_WHITESPACE - 1))
    return size


def plan(upload: Path, shard_bytes: int = DEFAULT_SHARD_BYTES, max_shards: int = DEFAULT_MAX_SHARDS) -> list[Shard]:
    """The shards of ``upload``: contiguous, non-empty (one empty shard for an empty file), covering every byte.
    Fewer than ``shard_count`` when a long run without whitespace swallows a split point."""
    size = upload.stat().st_size
    wanted = shard_count(size, shard_bytes, max_shards)
    cuts = [0]
    with open(open_no_follow(upload), "rb") as handle:
        for part in range(1, wanted):
            target = size * part // wanted
            if target <= cuts[-1]:
                continue  # the previous cut ran past this split point
            cut = next_cut(handle, target, size)
            if cut >= size:
                break
            cuts.append(cut)
    cuts.append(size)
    return [Shard(index, start, end) for index, (start, end) in enumerate(itertools.pairwise(cuts))]


def save_plan(directory: Path, shards: list[Shard]) -> None:
    formats.write_json(directory / PLAN, {"shards": [[shard.start, shard.end] for shard in shards]})


def load_plan(directory: Path) -> list[Shard] | None:
    document = formats.read_json(directory / PLAN)
    if document is None:
        return None
    return [Shard(index, int(start), int(end)) for index, (start, end) in enumerate(document["shards"])]


def partial_path(directory: Path, index: int) -> Path:
    return directory / _PARTIAL.format(index=index)


def read_range(upload: Path, shard: Shard, chunk: int = formats.READ_CHUNK) -> Iterator[bytes]:
    """The shard's bytes in chunks ending on the same absolute multiples of ``chunk`` as a whole-file read."""
    with open(open_no_follow(upload), "rb") as handle:
        handle.seek(shard.start)
        position = shard.start
        while position < shard.end:
            step = min(chunk - position % chunk, shard.end - position)
            data = handle.read(step)
            if not data:
                break  # the file shrank: the map reports the bytes it saw
            position += len(data)
            yield data


class _CountingTokenizer(Tokenizer):
    """The job's tokenizer (same carry, same cuts) that counts ASCII text by distinct token instead of listing its
    words: every character that cannot be in a word becomes a space, ``split`` and ``Counter`` do the rest in C, and
    only a token holding an apostrophe or a hyphen goes through the word pattern — once per distinct token, when the
    tokens are folded into ``counts`` (at the end, or whenever tokens and words together pass the vocabulary cap,
    which is then checked on the words). The same words as ``ASCII_WORD.findall``: a match never spans a space, and
    the pattern looks at nothing outside its match. Other text goes through the tokenizer's own words. The word
    lists it returns are empty."""

    def __init__(self, options: AnalysisOptions, counts: WordCount) -> None:
        job = options.tokenizer()
        super().__init__(lowercase=job.lowercase, min_length=job.min_length, stopwords=job.stopwords)
        self.counts = counts
        self._spaces = _ascii_table(job.lowercase)
        self._tokens: Counter[str] = Counter()  # ASCII text's tokens, not yet folded into ``counts``

    def _words(self, text: str) -> list[str]:
        if text.isascii():
            self._tokens.update(text.translate(self._spaces).split())
        else:
            self.counts.add(super()._words(text))
        cap = self.counts.max_unique
        if cap is not None and len(self._tokens) + self.counts.unique > cap:
            self.fold()
        return []

    def fold(self) -> None:
        """The tokens so far into ``counts`` as words; raises ``VocabularyTooLarge``."""
        tokens, self._tokens = self._tokens, Counter()
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


@functools.cache
def _ascii_table(lowercase: bool) -> dict[int, str]:
    """ASCII letters and digits (lowercased or not), apostrophe and hyphen kept; every other ASCII character a space."""
    kept = string.ascii_letters + string.digits + "'-"
    return {code: (chr(code).lower() if lowercase else chr(code)) if chr(code) in kept else " " for code in range(128)}


def count_shard(
    upload: Path, shard: Shard, options: AnalysisOptions, max_unique: int | None
) -> tuple[WordCount, StreamStats]:
    """The shard's word counts; ``InvalidText`` carries the bad byte's offset in the whole upload."""
    counts = WordCount(max_unique)
    try:
        tokenizer = _CountingTokenizer(options, counts)
        stats = stream_words(read_range(upload, shard), tokenizer, counts.add)
        tokenizer.fold()
    except InvalidText as error:
        raise InvalidText(shard.start + error.offset) from None
    return counts, stats


def write_partial(directory: Path, shard: Shard, counts: WordCount, stats: StreamStats) -> Partial:
    header = Partial(shard.index, shard.start, shard.end, stats.bytes, counts.total, counts.unique)
    with formats.atomic_writer(partial_path(directory, shard.index)) as out:
        out.write(f"# {json.dumps(asdict(header), separators=(',', ':'))}\n")
        out.writelines(f"{word}\t{count}\n" for word, count in counts.by_word())
    return header


def map_shard(upload: Path, directory: Path, shard: Shard, options: AnalysisOptions, max_unique: int | None) -> Partial:
    """Count one shard and write its partial result; raises ``InvalidText`` or ``VocabularyTooLarge``."""
    counts, stats = count_shard(upload, shard, options, max_unique)
    return write_partial(directory, shard, counts, stats)


def read_header(path: Path) -> Partial:
    with open(open_no_follow(path), encoding="utf-8", newline="\n") as handle:
        return _header(handle.readline())


def _header(line: str) -> Partial:
    if not line.startswith("# "):
        raise ValueError("not a partial result (no header)")
    return Partial(**json.loads(line[2:]))


def _entries(path: Path) -> Iterator[tuple[str, int]]:
    with open(open_no_follow(path), encoding="utf-8", newline="\n") as handle:
        _header(handle.readline())
        for line in handle:
            word, count = line[:-1].rsplit("\t", 1)
            yield word, int(count)


def merged_totals(paths: Iterable[Path], max_unique: int | None) -> Iterator[tuple[str, int]]:
    """Every word of the partial files once, with its summed count, in word order; raises ``VocabularyTooLarge``
    when the whole holds more than ``max_unique`` distinct words."""
    streams = [_entries(path) for path in paths]
    groups = itertools.groupby(heapq.merge(*streams), key=lambda entry: entry[0])
    for unique, (word, group) in enumerate(groups, start=1):
        if max_unique is not None and unique > max_unique:
            raise VocabularyTooLarge(max_unique)
        yield word, sum(count for _, count in group)


@dataclass(frozen=True)
class Merged:
    bytes: int
    words: int
    unique: int


class StalePartial(ValueError):
    """A partial result counted another range than the plan's (left over from an earlier plan)."""


def merge(directory: Path, shards: list[Shard], max_unique: int | None) -> Merged:
    """The partial results of ``shards`` into ``counts.tsv``; raises ``FileNotFoundError`` naming a missing one,
    ``StalePartial`` or ``VocabularyTooLarge``."""
    paths = [partial_path(directory, shard.index) for shard in shards]
    headers = [read_header(path) for path in paths]
    for shard, header in zip(shards, headers, strict=True):
        if (header.start, header.end) != (shard.start, shard.end):
            raise StalePartial(f"shard {shard.index}'s partial result counted bytes {header.start}-{header.end}")
    totals = list(merged_totals(paths, max_unique))
    words = sum(count for _, count in totals)
    with formats.atomic_writer(directory / formats.COUNTS) as out:
        formats.write_counts(out, ranked(totals))
    return Merged(sum(header.bytes for header in headers), words, len(totals))


def progress(directory: Path, shards: list[Shard]) -> tuple[int, int]:
    """Shards done and the bytes they covered, from the partial results present (their headers only)."""
    done = covered = 0
    for shard in shards:
        try:
            header = read_header(partial_path(directory, shard.index))
        except (FileNotFoundError, ValueError):
            continue
        if (header.start, header.end) == (shard.start, shard.end):
            done, covered = done + 1, covered + header.bytes
    return done, covered
