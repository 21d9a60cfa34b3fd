"""The files batch stages exchange: formats, atomic writes, the job store, callback signatures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.batch import formats, signing
from service.batch.formats import Outcome
from service.batch.states import JobRecord, Stage, State
from service.batch.store import JobStore, UnknownJob, new_id, valid_id


def test_words_survive_the_tokens_file_in_order(tmp_path: Path) -> None:
    words = ["don't", "l’été", "rock-n-roll", "हिन्दी", "42", "the"] * 5000
    path = tmp_path / formats.TOKENS
    with formats.atomic_writer(path) as out:
        for start in range(0, len(words), 777):
            formats.write_words(out, words[start : start + 777])
    batches = list(formats.read_word_batches(path))
    assert [word for batch in batches for word in batch] == words
    assert max(len(batch) for batch in batches) <= 8192  # read back a batch at a time, not whole


def test_counts_file_keeps_the_ranking_and_reads_only_the_head(tmp_path: Path) -> None:
    ranked = [("the", 9), ("a", 3), ("b", 3), ("tab\u00e9", 1)]
    path = tmp_path / formats.COUNTS
    with formats.atomic_writer(path) as out:
        formats.write_counts(out, ranked)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "9\tthe"
    assert formats.read_counts(path, 10) == ranked
    assert formats.read_counts(path, 2) == ranked[:2]


def test_a_failed_write_leaves_neither_the_file_nor_a_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), formats.atomic_writer(path) as out:
        out.write("half of the new content")
        raise RuntimeError("writer died")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_outcome_round_trips_and_ignores_unknown_fields(tmp_path: Path) -> None:
    outcome = Outcome(stage="count", ok=False, exit_code=3, reason="too many words", tokens=5, started=1, finished=2)
    formats.write_json(tmp_path / "count.json", {**outcome.to_json(), "future_field": 1})
    document = formats.read_json(tmp_path / "count.json")
    assert document is not None
    assert Outcome.from_json(document) == outcome
    assert formats.read_json(tmp_path / "absent.json") is None


def test_ids_sort_newest_first_and_reject_paths(tmp_path: Path) -> None:
    first = new_id()
    assert valid_id(first)
    for bad in ("../etc/passwd", first.upper(), first + "0", "", "x" * 21):
        assert not valid_id(bad)
    store = JobStore(tmp_path)
    store.ensure()
    ids = []
    for _ in range(3):
        job_id = new_id()
        store.incoming(job_id)
        store.commit(JobRecord(id=job_id, state=State.QUEUED, created=0, options={}))
        ids.append(job_id)
        os.utime(tmp_path)  # nothing depends on mtimes: the order is in the names
    assert store.ids() == sorted(ids, reverse=True)
    assert store.load("../../etc/passwd") is None


def test_an_upload_is_invisible_until_committed_and_gone_once_removed(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.ensure()
    job_id = new_id()
    (store.incoming(job_id) / "input.txt").write_text("some words")
    assert store.ids() == []
    assert store.load(job_id) is None
    store.commit(JobRecord(id=job_id, state=State.QUEUED, created=0, options={}))
    assert store.ids() == [job_id]
    formats.write_json(store.path(job_id) / "tokenize.json", Outcome("tokenize", True, 0).to_json())
    assert store.outcome(job_id, Stage.TOKENIZE) == Outcome("tokenize", True, 0)
    store.remove(job_id)
    assert store.ids() == [] and store.load(job_id) is None
    with pytest.raises(UnknownJob), store.locked(job_id):  # locking a deleted job must not bring it back
        pass
    assert not store.path(job_id).exists()
    other = new_id()
    store.incoming(other)
    store.discard_incoming(other)
    assert not (tmp_path / ".incoming" / other).exists()


def test_each_job_has_its_own_secret_and_signatures_bind_the_body(tmp_path: Path) -> None:
    key = signing.load_key(tmp_path, "")
    assert signing.load_key(tmp_path, "") == key  # one key file, read back by every replica
    assert (tmp_path / ".callback-key").stat().st_mode & 0o077 == 0
    first, second = signing.job_secret(key, "a" * 21), signing.job_secret(key, "b" * 21)
    assert first != second
    body = b'{"job":"aaaaaaaaaaaaaaaaaaaaa","stage":"tokenize","ok":true,"reason":null}'
    signature = signing.sign(first, body)
    assert signing.verify(first, body, signature)
    assert not signing.verify(second, body, signature)
    assert not signing.verify(first, body.replace(b"true", b"false"), signature)
    assert not signing.verify(first, body, signature[:-1] + "\u00e9")  # a client's non-ASCII header: no, never raise
    (tmp_path / "mounted").write_text("from-a-secret\n")
    assert signing.load_key(tmp_path, str(tmp_path / "mounted")) == b"from-a-secret"


def test_workers_starting_together_all_read_one_whole_key(tmp_path: Path) -> None:
    # Real processes racing to create the key file: none may find it empty (that would stop gunicorn at boot), and
    # all must read the same key; no draft file is left behind.
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(signing.load_key, [tmp_path] * 32, [""] * 32))
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == [".callback-key"]
