"""The sharded pipeline's core: planning cuts, counting one shard, merging the partial results (issue 22)."""

from __future__ import annotations

import io
import itertools
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.analysis import AnalysisOptions, Tokenizer, VocabularyTooLarge, analyze_chunks
from service.analysis.pipeline import InvalidText
from service.analysis.tokenizer import WHITESPACE
from service.batch import formats, shards
from service.batch.shards import Shard
from service.batch.stages import ExitCode, StageContext, map_outcome_name, run, run_map, run_merge
from service.batch.states import JobRecord, Stage, State
from service.batch.store import INPUT, JobStore, new_id

ROOT = Path(__file__).resolve().parents[3]
OPTIONS = AnalysisOptions()


def _expected_counts(data: bytes, options: AnalysisOptions = OPTIONS) -> str:
    """counts.tsv as the synchronous endpoint's domain function would rank the same bytes."""
    out = io.StringIO()
    formats.write_counts(out, analyze_chunks([data], options).counts.most_common())
    return out.getvalue()


def _sharded_counts(directory: Path, data: bytes, shard_bytes: int, max_unique: int | None = None) -> str:
    upload = directory / INPUT
    upload.write_bytes(data)
    plan = shards.plan(upload, shard_bytes, max_shards=1000)
    for shard in plan:
        shards.map_shard(upload, directory, shard, OPTIONS, max_unique)
    shards.merge(directory, plan, max_unique)
    return (directory / formats.COUNTS).read_text(encoding="utf-8")


def _check_plan(data: bytes, plan: list[Shard]) -> None:
    assert plan[0].start == 0 and plan[-1].end == len(data)
    for before, after in itertools.pairwise(plan):
        assert before.end == after.start and before.size > 0
        ends_with = data[: before.end].decode()[-1]  # decodes: every cut is on a character boundary
        assert WHITESPACE.fullmatch(ends_with), repr(ends_with)
    assert [shard.index for shard in plan] == list(range(len(plan)))


def test_every_separator_of_the_tokenizer_is_a_cut_point_and_nothing_else() -> None:
    separator = shards._separator()
    for code in (0x09, 0x0A, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2003, 0x2028, 0x202F, 0x3000):
        char = chr(code)
        assert separator.fullmatch(char.encode()), hex(code)
        assert Tokenizer().feed(f"ab{char}cd{char}") == ["ab", "cd"]  # the tokenizer splits there too
    astral = "".join(map(chr, range(0x10000, 0x110000)))
    assert WHITESPACE.search(astral) is None  # why the separators are looked for in the BMP only
    for char in "a-'’.\u0301\u200d\x1c":
        assert not separator.search(char.encode()), repr(char)


def test_shard_count_follows_the_size_and_is_bounded() -> None:
    assert shards.shard_count(0, 64) == 1
    assert shards.shard_count(64, 64) == 1
    assert shards.shard_count(65, 64) == 2
    assert shards.shard_count(10**12, 64, max_shards=8) == 8


def test_plan_cuts_after_whitespace_only(tmp_path: Path) -> None:
    data = "Ünïcödé wörds\u3000東京 and\u2028more  words\n".encode() * 50 + b"no trailing newline"
    (tmp_path / INPUT).write_bytes(data)
    for shard_bytes in (1, 3, 7, 64, 1000, len(data)):
        plan = shards.plan(tmp_path / INPUT, shard_bytes, max_shards=10_000)
        _check_plan(data, plan)
    assert len(shards.plan(tmp_path / INPUT, 100, max_shards=4)) == 4


def test_plan_keeps_a_run_without_whitespace_whole(tmp_path: Path) -> None:
    data = b"a " + "é".encode() * 5000 + b" b c"
    (tmp_path / INPUT).write_bytes(data)
    plan = shards.plan(tmp_path / INPUT, 100, max_shards=1000)
    _check_plan(data, plan)
    assert [(shard.start, shard.end) for shard in plan] == [(0, 10003), (10003, 10006)]  # 99 split points inside
    (tmp_path / INPUT).write_bytes(b"x" * 1000)
    assert shards.plan(tmp_path / INPUT, 10) == [Shard(0, 0, 1000)]
    (tmp_path / INPUT).write_bytes(b"")
    assert shards.plan(tmp_path / INPUT, 10) == [Shard(0, 0, 0)]


def test_finding_a_cut_reads_near_the_split_point_only() -> None:
    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            self.read_bytes += len(data)
            return data

    size = 8 * 1024 * 1024
    handle = Counting(b"word " * (size // 5))
    assert shards.next_cut(handle, size // 2, size) in range(size // 2, size // 2 + 6)
    assert handle.read_bytes <= 64 * 1024
    # A separator straddling two scan blocks is still found (blocks overlap by a separator's length).
    block = 64 * 1024
    data = b"x" * (block - 1) + "\u3000".encode() + b"y"
    assert shards.next_cut(io.BytesIO(data), 0, len(data)) == block + 2


def test_reads_align_with_the_whole_file_chunks(tmp_path: Path) -> None:
    (tmp_path / INPUT).write_bytes(bytes(1000))
    pieces = list(shards.read_range(tmp_path / INPUT, Shard(0, 150, 730), chunk=256))
    assert [len(piece) for piece in pieces] == [106, 256, 218]


def test_a_run_longer_than_the_tokenizer_carry_counts_as_in_one_process(tmp_path: Path) -> None:
    """The tokenizer cuts a run over 64 Ki characters where the chunks fall; shards read the same chunks."""
    run_of = ("abc." * 50_000).encode()  # 200 000 characters, no whitespace: forced cuts
    data = b"start here " + run_of + b" middle " + run_of[:70_001] + b" end"
    single = io.StringIO()
    formats.write_counts(
        single, analyze_chunks(formats.read_chunks(_write(tmp_path, data)), OPTIONS).counts.most_common()
    )
    for shard_bytes in (5, 1000, 100_000):
        directory = tmp_path / str(shard_bytes)
        directory.mkdir()
        assert _sharded_counts(directory, data, shard_bytes) == single.getvalue()


def _write(directory: Path, data: bytes) -> Path:
    path = directory / "whole.txt"
    path.write_bytes(data)
    return path


def test_invalid_utf8_names_the_offset_in_the_whole_upload(tmp_path: Path) -> None:
    data = b"fine words here " * 100 + b"bad \xff byte " + b"more words " * 10
    (tmp_path / INPUT).write_bytes(data)
    plan = shards.plan(tmp_path / INPUT, 300)
    bad = data.index(b"\xff")
    errors = []
    for shard in plan:
        try:
            shards.map_shard(tmp_path / INPUT, tmp_path, shard, OPTIONS, None)
        except InvalidText as error:
            errors.append((shard.index, error.offset))
    [(index, offset)] = errors
    assert offset == bad and plan[index].start > 0
    assert not shards.partial_path(tmp_path, index).exists()
    # A multi-byte character cut short by the end of the upload.
    (tmp_path / INPUT).write_bytes(b"words " * 100 + "é".encode()[:1])
    last = shards.plan(tmp_path / INPUT, 100)[-1]
    with pytest.raises(InvalidText) as raised:
        shards.map_shard(tmp_path / INPUT, tmp_path, last, OPTIONS, None)
    assert raised.value.offset == 600


def test_the_vocabulary_cap_applies_to_each_shard_and_to_the_whole(tmp_path: Path) -> None:
    data = b" ".join(f"w{number}".encode() for number in range(100))
    with pytest.raises(VocabularyTooLarge):
        _sharded_counts(tmp_path, data, shard_bytes=10_000, max_unique=99)  # one shard over the cap
    with pytest.raises(VocabularyTooLarge):
        _sharded_counts(tmp_path, data, shard_bytes=100, max_unique=99)  # every shard under it, the whole over
    assert _sharded_counts(tmp_path, data, shard_bytes=100, max_unique=100) == _expected_counts(data)


def test_partial_results_are_sorted_by_word_with_a_header(tmp_path: Path) -> None:
    data = "b a c a b a Zürich zulu".encode()
    (tmp_path / INPUT).write_bytes(data)
    [shard] = shards.plan(tmp_path / INPUT)
    header = shards.map_shard(tmp_path / INPUT, tmp_path, shard, OPTIONS, None)
    assert header == shards.Partial(index=0, start=0, end=len(data), bytes=len(data), words=8, unique=5)
    lines = shards.partial_path(tmp_path, 0).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# {")
    assert lines[1:] == ["a\t3", "b\t2", "c\t1", "zulu\t1", "zürich\t1"]
    assert shards.progress(tmp_path, [shard, Shard(1, len(data), len(data))]) == (1, len(data))


def test_a_merge_killed_midway_leaves_no_counts_and_a_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = ("one two three four five six seven " * 200).encode()
    expected = _expected_counts(data)
    (tmp_path / INPUT).write_bytes(data)
    plan = shards.plan(tmp_path / INPUT, 500)
    for shard in plan:
        shards.map_shard(tmp_path / INPUT, tmp_path, shard, OPTIONS, None)
    real = formats.write_counts

    def dies_after_a_line(handle: io.TextIOBase, ranked: list[tuple[str, int]]) -> None:
        real(handle, ranked[:1])
        raise KeyboardInterrupt  # a SIGTERM unwinds the same way (the stage maps it to SystemExit)

    monkeypatch.setattr(formats, "write_counts", dies_after_a_line)
    with pytest.raises(KeyboardInterrupt):
        shards.merge(tmp_path, plan, None)
    assert sorted(path.name for path in tmp_path.iterdir() if "counts" in path.name) == []
    monkeypatch.setattr(formats, "write_counts", real)
    merged = shards.merge(tmp_path, plan, None)
    assert (tmp_path / formats.COUNTS).read_text(encoding="utf-8") == expected
    assert (merged.bytes, merged.words, merged.unique) == (len(data), 1400, 7)


# --- the stage entry points ---------------------------------------------------------------------------------------


def _job(root: Path, data: bytes, options: dict[str, object] | None = None) -> tuple[JobStore, str]:
    store = JobStore(root)
    store.ensure()
    job_id = new_id()
    (store.incoming(job_id) / INPUT).write_bytes(data)
    store.commit(JobRecord(id=job_id, state=State.QUEUED, created=0, options=options or {}))
    return store, job_id


def test_map_and_merge_stages_equal_tokenize_and_count_byte_for_byte(tmp_path: Path) -> None:
    text = "The cat and the hat. Don't stop! Café naïve l’été 42 e\u0301te\u0301 東京\n" * 3000
    data = text.encode()
    options = {"lowercase": True, "min_length": 2, "stopwords": "en"}
    store, job_id = _job(tmp_path, data, options)
    context = StageContext(store, job_id, max_vocabulary=1000, callback_url="", secret="")
    assert run(Stage.TOKENIZE, context) is ExitCode.OK and run(Stage.COUNT, context) is ExitCode.OK
    directory = store.path(job_id)
    single = (directory / formats.COUNTS).read_bytes()
    (directory / formats.COUNTS).unlink()
    plan = shards.plan(directory / INPUT, 10_000)
    shards.save_plan(directory, plan)
    assert shards.load_plan(directory) == plan and len(plan) > 10
    for shard in plan:
        assert run_map(context, shard.index) is ExitCode.OK
    assert run_merge(context) is ExitCode.OK
    assert (directory / formats.COUNTS).read_bytes() == single
    merged = store.outcome(job_id, Stage.COUNT)
    outcome = formats.Outcome.from_json(formats.read_json(directory / "merge.json") or {})
    assert merged is not None and (outcome.bytes, outcome.tokens, outcome.unique) == (
        len(data),
        merged.tokens,
        merged.unique,
    )
    first = formats.read_json(directory / map_outcome_name(0)) or {}
    assert first["stage"] == "map" and first["ok"] and first["bytes"] == plan[0].size
    assert run_map(context, len(plan)) is ExitCode.USAGE


def test_stage_failures_carry_their_reason(tmp_path: Path) -> None:
    data = b"good words " * 1000 + b"\xc3\x28 tail"
    store, job_id = _job(tmp_path, data)
    context = StageContext(store, job_id, max_vocabulary=1000, callback_url="", secret="")
    directory = store.path(job_id)
    assert run_merge(context) is ExitCode.NO_JOB  # no plan yet
    plan = shards.plan(directory / INPUT, 4000)
    shards.save_plan(directory, plan)
    codes = [run_map(context, shard.index) for shard in plan]
    assert codes[:-1] == [ExitCode.OK] * (len(plan) - 1) and codes[-1] is ExitCode.BAD_INPUT
    reason = (formats.read_json(directory / map_outcome_name(len(plan) - 1)) or {})["reason"]
    assert reason == f"the upload is not valid UTF-8 (first bad byte at offset {len(data) - 7})"
    assert run_merge(context) is ExitCode.UNEXPECTED  # a shard has no partial result: nothing merged
    assert not (directory / formats.COUNTS).exists()
    # A partial result left by an earlier plan is not merged as if it counted this plan's range.
    shards.save_plan(directory, [Shard(0, 0, len(data) - 7), Shard(1, len(data) - 7, len(data))])
    assert run_merge(context) is ExitCode.UNEXPECTED
    reason = (formats.read_json(directory / "merge.json") or {})["reason"]
    assert reason.startswith("shard 0's partial result counted bytes 0-")
    assert not (directory / formats.COUNTS).exists()


def test_the_map_command_takes_its_index_from_the_indexed_job(tmp_path: Path) -> None:
    data = ("alpha beta gamma " * 2000).encode()
    store, job_id = _job(tmp_path, data)
    directory = store.path(job_id)
    plan = shards.plan(directory / INPUT, 10_000)
    shards.save_plan(directory, plan)
    env = {**os.environ, "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "LOG_LEVEL": "warning"}
    for shard in plan:
        command = [sys.executable, "-m", "service.batch", "map", job_id]
        done = subprocess.run(command, env={**env, "JOB_COMPLETION_INDEX": str(shard.index)}, cwd=ROOT, check=False)
        assert done.returncode == 0
    assert subprocess.run([sys.executable, "-m", "service.batch", "merge", job_id], env=env, cwd=ROOT).returncode == 0
    assert (directory / formats.COUNTS).read_text(encoding="utf-8") == "2000\talpha\n2000\tbeta\n2000\tgamma\n"
    missing = subprocess.run(
        [sys.executable, "-m", "service.batch", "map", job_id], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "JOB_COMPLETION_INDEX" in missing.stderr


def test_a_merge_process_killed_while_writing_leaves_no_counts_and_a_rerun_finishes(tmp_path: Path) -> None:
    """A real SIGKILL mid-write: the merge's temporary file is made a pipe nobody reads, so the merge blocks
    inside its writes (its output is larger than a pipe holds) until it is killed."""
    data = " ".join(f"word{number % 30_000}" for number in range(90_000)).encode()  # counts.tsv ≈ 400 KB
    store, job_id = _job(tmp_path, data)
    directory = store.path(job_id)
    plan = shards.plan(directory / INPUT, len(data) // 3)
    shards.save_plan(directory, plan)
    context = StageContext(store, job_id, max_vocabulary=100_000, callback_url="", secret="")
    assert [run_map(context, shard.index) for shard in plan] == [ExitCode.OK] * len(plan)
    env = {**os.environ, "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_MAX_VOCABULARY": "100000"}
    merge = [sys.executable, "-m", "service.batch", "merge", job_id]
    merging = subprocess.Popen(merge, env=env, cwd=ROOT)
    temporary = directory / f".{formats.COUNTS}.{merging.pid}.tmp"
    os.mkfifo(temporary)  # long before the merge gets there: it has an interpreter to start and 3 files to read
    reader = os.open(temporary, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([reader], [], [], 60)  # a hang guard, not a timing assertion
        assert ready and os.read(reader, 4096)  # the merge has begun counts.tsv …
        assert merging.poll() is None  # … and is stuck in the rest
        merging.kill()
        merging.wait()
    finally:
        os.close(reader)
    assert not (directory / formats.COUNTS).exists()
    temporary.unlink()  # what a killed writer leaves: a temporary name, never counts.tsv
    assert subprocess.run(merge, env=env, cwd=ROOT, check=False).returncode == 0
    assert (directory / formats.COUNTS).read_text(encoding="utf-8") == _expected_counts(data)


# --- the property: sharded == synchronous ---------------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        *"aZé\u0301\u0308'’-.,",
        *" \t\n\r\u00a0\u2028\u3000\u0085",
        "東京",
        "가\u1161\u11a8",
        "İ",
        "👩\u200d💻",
        "x" * 300,  # a long word
        "e\u0301" * 40,
    ]
)
_texts = st.lists(st.one_of(_pieces, st.characters(codec="utf-8")), max_size=120).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=_texts, shard_bytes=st.sampled_from([1, 2, 3, 5, 17, 64, 10_000]))
def test_sharded_result_equals_the_synchronous_endpoint(text: str, shard_bytes: int) -> None:
    data = text.encode()
    with tempfile.TemporaryDirectory() as directory:
        assert _sharded_counts(Path(directory), data, shard_bytes) == _expected_counts(data)


# The map counts ASCII text by distinct token (shards._CountingTokenizer): the same counts as the tokenizer's words
# for every option, around apostrophes, hyphens, control characters and stop words in any case.
_ascii_pieces = st.sampled_from(
    [
        *"aZq09'-.,;!_\x1c\x0b\x00",
        " ",
        "\t",
        "\n",
        "--",
        "'-",
        "-'",
        "The",
        "the",
        "AND",
        "don't",
        "rock-n-roll",
        "x" * 90,
    ]
)
_ascii_texts = st.lists(st.one_of(_ascii_pieces, st.characters(max_codepoint=127)), max_size=150).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    text=_ascii_texts,
    lowercase=st.booleans(),
    min_length=st.integers(1, 3),
    stopwords=st.sampled_from(["none", "en"]),
)
def test_a_shard_of_ascii_text_counts_what_the_tokenizer_finds(
    text: str, lowercase: bool, min_length: int, stopwords: str
) -> None:
    options = AnalysisOptions(lowercase=lowercase, min_length=min_length, stopwords=stopwords)
    data = text.encode()
    with tempfile.TemporaryDirectory() as directory:
        upload = _write(Path(directory), data)
        counts, stats = shards.count_shard(upload, Shard(0, 0, len(data)), options, None)
        expected = analyze_chunks([data], options).counts
        assert counts.by_word() == expected.by_word()
        assert (counts.total, counts.unique, stats.bytes) == (expected.total, expected.unique, len(data))
        # The vocabulary cap is checked on words, not on the tokens they were counted from.
        assert shards.count_shard(upload, Shard(0, 0, len(data)), options, expected.unique)[0].unique == expected.unique
        if expected.unique:
            with pytest.raises(VocabularyTooLarge):
                shards.count_shard(upload, Shard(0, 0, len(data)), options, expected.unique - 1)
