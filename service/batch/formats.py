"""The files the stages hand each other on the shared volume, and how they are written.

- ``tokens.txt`` (tokenize → count): the words of the text in order, one per line, UTF-8, already filtered by the
  job's options. A word never holds whitespace, so a line is a word.
- ``counts.tsv`` (count → API): ``count<TAB>word`` lines, most frequent first, ties alphabetical — the ranking
  ``/api/v1/wordcount`` reports, so the result endpoint reads only the first ``limit`` lines.
- ``<stage>.json``: the stage's outcome — ``{"stage", "ok", "reason", "exit_code", "bytes", "tokens", "unique",
  "started", "finished", "peak_rss_kib"}``. Written last: its presence means the stage is over.

Every file is written to a temporary name in the same directory and renamed into place, so a reader sees either
nothing or the whole file, whatever killed the writer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from service.privatedirs import FILE_MODE, open_no_follow

TOKENS = "tokens.txt"
COUNTS = "counts.tsv"
READ_CHUNK = 64 * 1024  # small enough to stay in cache: a 256 KiB read cost ~20 % more CPU per MiB on a busy machine
_LINES_PER_BATCH = 8192


@dataclass
class Outcome:
    stage: str
    ok: bool
    exit_code: int
    reason: str | None = None
    bytes: int = 0
    tokens: int = 0
    unique: int = 0
    started: float = 0.0
    finished: float = 0.0
    peak_rss_kib: int = 0  # the stage process's high-water mark: what bounded memory is checked against

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Outcome:
        return cls(**{key: document[key] for key in cls.__dataclass_fields__ if key in document})


@contextlib.contextmanager
def atomic_writer(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file object whose content appears at ``path`` only when the block ends without error."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # 0600 whatever the umask; a symbolic link planted at the temporary name is not written through.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
        with open(descriptor, "wb") as raw:
            handle: IO[Any] = raw if binary else io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            yield handle
            handle.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()  # only still there when something failed: a partial file must not fill the volume


def write_json(path: Path, document: dict[str, Any]) -> None:
    with atomic_writer(path) as handle:
        json.dump(document, handle, separators=(",", ":"))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return document if isinstance(document, dict) else None


def read_chunks(path: Path, size: int = READ_CHUNK) -> Iterator[bytes]:
    """A stage's input, never read through a symbolic link planted in its place (``OSError`` ELOOP instead)."""
    with open(open_no_follow(path), "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def write_words(handle: IO[str], words: list[str]) -> None:
    if words:
        handle.write("\n".join(words))
        handle.write("\n")


def read_word_batches(path: Path) -> Iterator[list[str]]:
    """The tokens file back as batches of words, in order, holding one batch at a time."""
    batch: list[str] = []
    with open(open_no_follow(path), encoding="utf-8") as handle:
        for line in handle:
            batch.append(line[:-1] if line.endswith("\n") else line)
            if len(batch) >= _LINES_PER_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def write_counts(handle: IO[str], ranked: Iterable[tuple[str, int]]) -> None:
    for word, count in ranked:
        handle.write(f"{count}\t{word}\n")


def read_counts(path: Path, limit: int) -> list[tuple[str, int]]:
    """The first ``limit`` entries of the ranking."""
    ranked: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if len(ranked) >= limit:
                break
            count, word = line.rstrip("\n").split("\t", 1)
            ranked.append((word, int(count)))
    return ranked
