"""The sharded pipeline wired in (issue 22): the coordinator plans the shards, the local runner maps them in
parallel processes and merges them; real stage processes on a temporary volume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from service.analysis import AnalysisOptions, analyze_chunks
from service.batch import formats, shards, signing
from service.batch.coordinator import Coordinator
from service.batch.errors import MalformedEvent
from service.batch.local import LocalRunner
from service.batch.observer import Unobserved
from service.batch.progress import Limits
from service.batch.stages import ExitCode, event_body, map_outcome_name
from service.batch.states import JobRecord, Stage, State
from service.batch.store import JobStore, new_id

OPTIONS = {"lowercase": True, "min_length": 1, "stopwords": "none"}
SHARD = 4096


@pytest.fixture
def coordinator(tmp_path: Path) -> Coordinator:
    env = {
        "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path),
        "FLASK_SVC_MAX_VOCABULARY": "1000",
        "FLASK_SVC_BATCH_PARALLELISM": "2",
        "LOG_FORMAT": "json",
    }
    limits = Limits(shard_bytes=SHARD, max_shards=8)
    return Coordinator.open(tmp_path, LocalRunner(tmp_path), "", env, observer=Unobserved(), limits=limits)


def _until_done(coordinator: Coordinator, job_id: str, timeout: float = 60) -> JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = coordinator.get(job_id)
        if record.state.terminal:
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {record.state} after {timeout}s")


def test_a_job_is_mapped_over_its_shards_then_merged_into_the_synchronous_answer(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    text = ("The cat and the hat. Don't stop! Café naïve l’été 42 " * 600).encode()  # 34 KB: 8 shards (the cap)
    record = coordinator.create([text], OPTIONS, traceparent=None)
    assert record.state is State.TOKENIZING and record.shards == 8
    done = _until_done(coordinator, record.id)
    assert done.state is State.SUCCEEDED, done.reason
    assert (done.shards, done.shards_done, done.bytes_done) == (8, 8, len(text))
    expected = analyze_chunks([text], AnalysisOptions(**OPTIONS)).counts
    result = coordinator.result(record.id, 100)
    assert (result.bytes, result.tokens, result.unique) == (len(text), expected.total, expected.unique)
    assert result.counts == expected.most_common(100)
    directory = tmp_path / record.id
    assert sorted(p.name for p in directory.glob("map-*.json")) == [map_outcome_name(i) for i in range(8)]
    assert (directory / "merge.json").exists() and not (directory / "tokenize.json").exists()


def test_a_bad_byte_in_a_later_shard_fails_the_job_naming_its_offset_in_the_upload(coordinator: Coordinator) -> None:
    good = b"fine words here " * 1000  # 16 000 bytes: the bad byte lands in the fourth shard
    done = _until_done(coordinator, coordinator.create([good + b"\xff more"], OPTIONS, traceparent=None).id)
    assert done.state is State.FAILED
    assert done.reason == f"the upload is not valid UTF-8 (first bad byte at offset {len(good)})"


def test_the_vocabulary_cap_applies_to_the_whole_not_to_each_shard(coordinator: Coordinator) -> None:
    text = " ".join(f"w{n}" for n in range(1500)).encode()  # 3 shards of ~500 words each; 1500 > the cap of 1000
    record = coordinator.create([text], OPTIONS, traceparent=None)
    done = _until_done(coordinator, record.id)
    assert done.state is State.FAILED and done.reason == "the text has more than 1000 distinct words"
    assert done.shards_done == done.shards > 1  # every map passed: the merge refused


def test_a_map_callback_names_its_shard_and_is_accepted(coordinator: Coordinator) -> None:
    record = coordinator.create([b"some words " * 1000], OPTIONS, traceparent=None)
    secret = signing.job_secret(coordinator.key, record.id)
    outcome = formats.Outcome(stage="map", ok=True, exit_code=0)
    for body in (event_body(record.id, outcome, 1), event_body(record.id, formats.Outcome("merge", True, 0))):
        assert coordinator.report(record.id, body, signing.sign(secret, body)).reason is None  # not a 400
    for body in (event_body(record.id, outcome), event_body(record.id, formats.Outcome("count", True, 0), 1)):
        with pytest.raises(MalformedEvent):  # a map event without its shard, another stage's with one
            coordinator.report(record.id, body, signing.sign(secret, body))
    assert _until_done(coordinator, record.id).state is State.SUCCEEDED


def test_a_map_failure_the_stage_could_only_report_fails_the_job(coordinator: Coordinator) -> None:
    record = coordinator.create([b"some words " * 3000], OPTIONS, traceparent=None)
    coordinator.runner.cancel(record.id)  # no stage writes an outcome; the report is all there is
    (coordinator.store.path(record.id) / map_outcome_name(2)).unlink(missing_ok=True)
    secret = signing.job_secret(coordinator.key, record.id)
    body = event_body(record.id, formats.Outcome("map", False, ExitCode.STORAGE, reason="volume full"), 2)
    assert coordinator.report(record.id, body, signing.sign(secret, body)).reason == "volume full"


def _children(parent: int) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().decode().rstrip("\0").split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            found[int(entry.name)] = command
    return found


def test_a_killed_shard_process_reruns_alone_and_the_job_succeeds(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.ensure()
    job_id = new_id()
    (store.incoming(job_id) / "input.txt").write_bytes(b"many words here " * 2_000_000)  # 32 MB, two shards
    store.commit(JobRecord(id=job_id, state=State.TOKENIZING, created=0, options=OPTIONS))
    upload = tmp_path / job_id / "input.txt"
    plan = shards.plan(upload, 16 << 20)
    shards.save_plan(tmp_path / job_id, plan)
    assert len(plan) == 2
    env = {**os.environ, "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_BATCH_PARALLELISM": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["LOG_FORMAT"] = "json"
    driver = subprocess.Popen(LocalRunner.command(job_id, Stage.TOKENIZE), env=env, stdout=subprocess.PIPE, text=True)
    seen: set[int] = set()  # the driver's children (forked: one per shard run)
    killed = None
    while driver.poll() is None:
        children = _children(driver.pid)
        seen.update(children)
        if killed is None and len(children) == 2:  # both shards under way: kill one
            killed = max(children)
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    output = driver.stdout.read() if driver.stdout else ""
    assert driver.returncode == 0 and killed is not None
    reruns = [json.loads(line) for line in output.splitlines() if "rerunning that shard" in line]
    assert [(line["exit_code"], line["shard"] in (0, 1)) for line in reruns] == [(-signal.SIGKILL, True)]
    assert len(seen) == 3, seen  # two shards, one of them twice: the other was not rerun
    assert shards.progress(tmp_path / job_id, plan) == (2, upload.stat().st_size)


class _Progress(Unobserved):
    def __init__(self) -> None:
        self.counted: list[tuple[int, int]] = []

    def shards_counted(self, shards: int, covered: int) -> None:
        self.counted.append((shards, covered))


def test_each_shard_and_its_bytes_are_reported_once_as_the_map_progresses(tmp_path: Path) -> None:
    progress = _Progress()
    env = {"FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_BATCH_PARALLELISM": "2", "LOG_FORMAT": "json"}
    limits = Limits(shard_bytes=SHARD, max_shards=8)
    coordinator = Coordinator.open(tmp_path, LocalRunner(tmp_path), "", env, observer=progress, limits=limits)
    text = ("one two three four " * 1000).encode()  # 19 KB: 5 shards
    record = coordinator.create([text], OPTIONS, traceparent=None)
    done = _until_done(coordinator, record.id)
    assert done.state is State.SUCCEEDED, done.reason
    coordinator.reconcile()  # a pass over a finished job counts nothing again
    assert sum(shards for shards, _ in progress.counted) == done.shards == 5
    assert sum(covered for _, covered in progress.counted) == len(text)
