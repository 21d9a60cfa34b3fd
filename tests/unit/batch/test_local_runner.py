"""The local runner's view of a stage process at the two moments /proc says least about it: just after ``start``
returned (the kernel may not have set up the new program's command line yet) and just after it ended (before the
thread that waits for it has written its exit status). In both a status read must not call the stage a failure.

Each moment is held open by the test (a stage that waits for a file before it becomes itself; the stage host,
which writes the exit status, stopped while its stage ends), so what is checked does not depend on timing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from service.batch import local
from service.batch.coordinator import Coordinator
from service.batch.local import LocalRunner
from service.batch.observer import Unobserved
from service.batch.runner import Phase
from service.batch.states import Stage, State
from service.batch.store import new_id

# A stage that waits for a file, then becomes the real one (``exec``): until then its command line names neither
# the stage nor the job, as a just-started process's may not yet.
_GATED = """import json, os, time
while not os.path.exists(os.environ["GATE"]):
    time.sleep(0.01)
command = json.loads(os.environ["STAGE_COMMAND"])
os.execv(command[0], command)
"""


class GatedRunner(LocalRunner):
    def start(self, job_id: str, stage: Stage, env: Any, shards: int = 1) -> str:
        command = json.dumps(LocalRunner.command(job_id, stage))
        return super().start(job_id, stage, {**env, "STAGE_COMMAND": command}, shards)

    @staticmethod
    def command(job_id: str, stage: Stage) -> list[str]:
        return [sys.executable, "-c", _GATED]


def test_a_stage_that_does_not_show_its_command_line_yet_is_running(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    env = {"FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_MAX_VOCABULARY": "1000", "GATE": str(gate)}
    coordinator = Coordinator.open(tmp_path, GatedRunner(tmp_path), "", env, observer=Unobserved())
    job_id = coordinator.create([b"the cat and the hat " * 50], {}, traceparent=None).id
    for _ in range(3):
        record = coordinator.get(job_id)
        assert (record.state, record.reason) == (State.TOKENIZING, None)
    gate.touch()
    deadline = time.monotonic() + 60
    while not (record := coordinator.get(job_id)).state.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (record.state, record.reason) == (State.SUCCEEDED, None)


class KilledRunner(LocalRunner):
    """A stage that waits for a file, then dies by SIGKILL (no outcome: only its exit status tells)."""

    @staticmethod
    def command(job_id: str, stage: Stage) -> list[str]:
        wait_then_die = "while not os.path.exists(os.environ['GATE']): time.sleep(0.01)\nos.kill(os.getpid(), 9)"
        return [sys.executable, "-c", f"import os, time\n{wait_then_die}"]


def test_a_stage_that_just_ended_is_running_until_its_exit_status_is_written(tmp_path: Path) -> None:
    runner = KilledRunner(tmp_path)
    job_id = new_id()
    runner.store.path(job_id).mkdir()
    gate = tmp_path / "go"
    runner.start(job_id, Stage.COUNT, {"GATE": str(gate)})
    identity = json.loads((runner.store.path(job_id) / "count.pid").read_text())
    os.kill(identity["parent"], signal.SIGSTOP)  # the host, which writes the exit status, is held
    try:
        gate.touch()
        deadline = time.monotonic() + 30
        while _state(identity["pid"]) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(identity["pid"]) == "Z", "the stage never ended"
        assert runner.status(job_id, Stage.COUNT).phase is Phase.RUNNING  # ended, but how is not written down yet
    finally:
        os.kill(identity["parent"], signal.SIGCONT)
    exit_file = runner.store.path(job_id) / "count.exit"
    deadline = time.monotonic() + 30
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    status = runner.status(job_id, Stage.COUNT)
    assert (status.phase, status.reason) == (
        Phase.FAILED,
        f"the count stage ended without reporting an outcome (signal {int(signal.SIGKILL)})",
    )


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_recycled_pid_is_not_the_stage(tmp_path: Path) -> None:
    runner = LocalRunner(tmp_path)
    job_id = new_id()
    runner.store.path(job_id).mkdir()
    started = local.start_time(os.getpid())
    pid_file = runner.store.path(job_id) / "count.pid"
    pid_file.write_text(json.dumps({"pid": os.getpid(), "started": started - 1, "parent": os.getppid()}))
    assert runner.status(job_id, Stage.COUNT).phase is Phase.FAILED  # this process is alive, but not that one
    pid_file.write_text(json.dumps({"pid": os.getpid(), "started": started, "parent": os.getppid()}))
    assert runner.status(job_id, Stage.COUNT).phase is Phase.RUNNING


def test_a_stage_host_that_died_is_replaced_and_its_stage_goes_on(tmp_path: Path) -> None:
    runner = KilledRunner(tmp_path)
    gate = tmp_path / "go"
    first, second = new_id(), new_id()
    for job_id in (first, second):
        runner.store.path(job_id).mkdir()
    runner.start(first, Stage.COUNT, {"GATE": str(gate)})
    before = json.loads((runner.store.path(first) / "count.pid").read_text())
    os.kill(before["parent"], signal.SIGKILL)
    runner.start(second, Stage.COUNT, {"GATE": str(gate)})
    after = json.loads((runner.store.path(second) / "count.pid").read_text())
    assert after["parent"] != before["parent"]  # a new host
    assert runner.status(first, Stage.COUNT).phase is Phase.RUNNING  # its stage outlived it
    gate.touch()
    deadline = time.monotonic() + 30
    while runner.status(second, Stage.COUNT).phase is Phase.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.status(second, Stage.COUNT).reason == "the count stage ended without reporting an outcome (signal 9)"
    while runner.status(first, Stage.COUNT).phase is Phase.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    # Nobody was left to write down how the orphan ended: a failure with no detail, not a hang.
    assert runner.status(first, Stage.COUNT).reason == "the count stage ended without reporting an outcome (unknown)"


def test_each_forked_shard_carries_its_own_name() -> None:
    # A forked shard keeps the driver's command line; its name is what tells it apart in ps, top and the bench.
    def named(index: int) -> int:
        return 0 if Path("/proc/self/comm").read_text().strip() == f"batch-shard-{index}" else 1

    assert local.drive_map(3, 2, named, retries=0) == 0


def test_a_stage_that_ends_before_its_pid_file_is_written_still_leaves_its_exit_status(tmp_path: Path) -> None:
    # The host's answer comes before the starter writes the pid file: a stage may already have ended by then.
    job = tmp_path / "job"
    job.mkdir()
    request = {"argv": ["/bin/false"], "env": {}, "log": str(job / "count.log"), "exit": str(job / "count.exit")}
    host = subprocess.Popen(
        [sys.executable, "-m", "service.batch.forkhost"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdin is not None and host.stdout is not None
        assert "ready" in json.loads(host.stdout.readline())
        host.stdin.write(json.dumps(request) + "\n")
        host.stdin.flush()
        assert "pid" in json.loads(host.stdout.readline())
        deadline = time.monotonic() + 30
        while not (job / "count.exit").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert json.loads((job / "count.exit").read_text()) == {"exit_code": 1}
    finally:
        host.kill()
        host.wait()


def _two_jobs_of_stages_that_die_at_once(tmp_path: Path) -> tuple[KilledRunner, dict[str, str], str, str]:
    runner = KilledRunner(tmp_path)
    gate = tmp_path / "go"
    gate.touch()
    first, second = new_id(), new_id()
    for job_id in (first, second):
        runner.store.path(job_id).mkdir()
    return runner, {"GATE": str(gate)}, first, second


def test_a_stage_host_that_stops_answering_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner, env, first, second = _two_jobs_of_stages_that_die_at_once(tmp_path)
    runner.start(first, Stage.COUNT, env)  # the host's own start, at the usual bound (a busy machine)
    monkeypatch.setattr(local, "_HOST_ANSWER_SECONDS", 0.5)
    wedged = json.loads((runner.store.path(first) / "count.pid").read_text())["parent"]
    os.kill(wedged, signal.SIGSTOP)
    try:
        runner.start(second, Stage.COUNT, env)  # once hung here for good
        assert json.loads((runner.store.path(second) / "count.pid").read_text())["parent"] != wedged
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(wedged, signal.SIGKILL)


def test_an_idle_stage_host_exits_and_the_next_start_gets_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that ran one job must not keep a pre-loaded interpreter for good.
    local.stop_stage_host()  # an earlier test's host keeps the idle time it was started with
    monkeypatch.setattr(local, "_HOST_IDLE_SECONDS", 0.2)
    runner, env, first, second = _two_jobs_of_stages_that_die_at_once(tmp_path)
    try:
        runner.start(first, Stage.COUNT, env)
        idle = json.loads((runner.store.path(first) / "count.pid").read_text())["parent"]
        deadline = time.monotonic() + 30
        while local._HOST._process is not None and local._HOST._process.poll() is None:
            assert time.monotonic() < deadline, "the idle host did not exit"
            time.sleep(0.02)
        runner.start(second, Stage.COUNT, env)
        assert json.loads((runner.store.path(second) / "count.pid").read_text())["parent"] != idle
    finally:
        local.stop_stage_host()
