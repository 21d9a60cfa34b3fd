"""The local runner: each stage is a process forked by this worker's stage host (``service.batch.forkhost``, one
pre-loaded interpreter started on first use), its traces kept in the job directory.

The map stage's process (``python -m service.batch map <id> all``) is a small driver: it runs the plan's shards in
at most ``FLASK_SVC_BATCH_PARALLELISM`` forked children (each what ``map <id> <index>`` does in an Indexed Job's pod),
reruns an index whose process died for a reason worth a retry (killed, crashed) on its own, and stops every other
index at the first permanent failure, as the Kubernetes runner's Indexed Job does.

``<stage>.pid`` names the process by its pid and its start time (so a recycled pid is not mistaken for it; a
command line is no proof: a forked stage shows the host's, and an exec'd one shows none for a moment after it
starts) and its parent, the host. ``<stage>.exit`` is written by the host for deaths the stage could not report
itself — before it reaps the process, so a stage gone from /proc has its exit file. A process that outlives the
worker or the host that started it goes on; its outcome file is what counts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from service.batch.formats import read_json, write_json
from service.batch.runner import Phase, StageStatus
from service.batch.stages import PERMANENT_EXIT_CODES, ExitCode
from service.batch.states import COMMAND, MAP, Stage
from service.batch.store import JobStore

log = logging.getLogger("service.batch.stage")
ALL_SHARDS = "all"  # the map command's index argument that runs the local driver

# Stages write no metric files into the server's directory, whose merged totals are the service's.
_NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR",)
_STOP_WAIT_SECONDS = 5


class LocalRunner:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.store = JobStore(root)

    def check(self) -> None:
        return None

    def stage_name(self, job_id: str, stage: Stage) -> str:
        return f"local-{job_id}-{stage.value}"

    def start(self, job_id: str, stage: Stage, env: Mapping[str, str], shards: int = 1) -> str:
        directory = self.store.path(job_id)
        if self._identity(directory, stage) is not None and self.status(job_id, stage).phase is Phase.RUNNING:
            return self.stage_name(job_id, stage)
        (directory / f"{stage.value}.exit").unlink(missing_ok=True)
        environment = _inherited() | dict(env)
        request = {
            "argv": self.command(job_id, stage),
            "env": environment,
            "log": str(directory / f"{stage.value}.log"),
            "exit": str(directory / f"{stage.value}.exit"),
        }
        child, host = _HOST.start(request)
        write_json(directory / f"{stage.value}.pid", {"pid": child["pid"], "started": child["started"], "parent": host})
        return self.stage_name(job_id, stage)

    @staticmethod
    def command(job_id: str, stage: Stage) -> list[str]:
        command = [sys.executable, "-m", "service.batch", COMMAND[stage], job_id]
        return [*command, ALL_SHARDS] if COMMAND[stage] == MAP else command

    @staticmethod
    def _identity(directory: Path, stage: Stage) -> dict[str, int] | None:
        document = read_json(directory / f"{stage.value}.pid")
        return {key: int(value) for key, value in document.items()} if document else None

    @staticmethod
    def _state(identity: dict[str, int]) -> tuple[str, int] | None:
        """The process's state letter and parent, or None when it is gone (or its pid is another process's now)."""
        fields = _stat_fields(identity["pid"])
        if fields is None or int(fields[_START_TIME]) != identity.get("started"):
            return None
        return fields[_STATE], int(fields[_PARENT])

    def _alive(self, identity: dict[str, int]) -> bool:
        state = self._state(identity)
        return state is not None and state[0] != "Z"

    def status(self, job_id: str, stage: Stage) -> StageStatus:
        directory = self.store.path(job_id)
        identity = self._identity(directory, stage)
        if identity is None:
            return StageStatus(Phase.MISSING)
        state = self._state(identity)
        if state is not None and state[0] != "Z":
            return StageStatus(Phase.RUNNING)
        exited = read_json(directory / f"{stage.value}.exit")
        if exited is None and state is not None and state[1] == identity.get("parent"):
            return StageStatus(Phase.RUNNING)  # it ended this moment: the host is writing down how
        if exited is not None and exited.get("exit_code") == 0:
            return StageStatus(Phase.SUCCEEDED)
        code = exited.get("exit_code") if exited else None
        detail = f"exit code {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "unknown"
        return StageStatus(Phase.FAILED, f"the {stage.value} stage ended without reporting an outcome ({detail})")

    def active(self) -> set[str]:
        return set()  # a stage's outcome is its last act: the records say all there is

    def cancel(self, job_id: str) -> None:
        """SIGTERM each live stage's process group and wait (briefly) for it to go, so no file appears later."""
        directory = self.store.path(job_id)
        stopping = []
        for stage in Stage:
            identity = self._identity(directory, stage)
            if identity is not None and self._alive(identity):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(identity["pid"], signal.SIGTERM)
                    stopping.append(identity)
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        while stopping and time.monotonic() < deadline:
            stopping = [identity for identity in stopping if self._alive(identity)]
            time.sleep(0.02)
        for identity in stopping:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(identity["pid"], signal.SIGKILL)


def _inherited() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}


_HOST_ANSWER_SECONDS = 10  # a fork and one line back; far more than a loaded machine needs
_HOST_START_SECONDS = 60  # a fresh interpreter's imports, on a machine that may be busy with every core
_HOST_IDLE_SECONDS = 60  # then the host exits, giving back its memory; the next start starts another


class _StageHost:
    """This process's line to its stage host (``service.batch.forkhost``): started on first use, started again
    when it died; one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def start(self, request: Mapping[str, object]) -> tuple[dict[str, int], int]:
        """The forked stage's pid and start time, and the host's pid; ``OSError`` when no host answers."""
        line = ""
        with self._lock:
            for _attempt in range(2):  # a host found dead is replaced once
                process = self._running()
                try:
                    assert process.stdin is not None and process.stdout is not None
                    process.stdin.write(json.dumps(request) + "\n")
                    process.stdin.flush()
                    # A host that is stopped or wedged must not hold every start of this worker: it is replaced.
                    answered, _, _ = select.select([process.stdout], [], [], _HOST_ANSWER_SECONDS)
                    line = process.stdout.readline() if answered else ""
                except OSError:
                    line = ""
                if line:
                    break
                self._stop()
        if not line:
            raise OSError("the stage host did not answer")
        answer = json.loads(line)
        if "error" in answer:
            raise OSError(answer["error"])
        return answer, process.pid

    def _running(self) -> subprocess.Popen[str]:
        """The host, started (and waited for until it says it is ready) unless it runs; ``OSError`` when it never
        says so. Its start is timed apart from its answers: an interpreter's imports are not a wedged host."""
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "service.batch.forkhost", str(_HOST_IDLE_SECONDS)],
                env=_inherited(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a signal to the server's group is not one to the stages' parent
            )
            assert self._process.stdout is not None
            started, _, _ = select.select([self._process.stdout], [], [], _HOST_START_SECONDS)
            if not started or '"ready"' not in self._process.stdout.readline():
                self._stop()
                raise OSError("the stage host did not start")
        return self._process

    def close(self) -> None:
        """End the host as its worker stops: end of input makes it exit (stages it forked go on), so it is reaped
        here rather than left to whoever adopts it."""
        with self._lock:
            if self._process is None:
                return
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._stop()
            self._process = None

    def _stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.kill()
            self._process.wait()
            self._process = None


_HOST = _StageHost()
stop_stage_host = _HOST.close

# Fields of /proc/<pid>/stat after the command name: 0 is field 3 of proc(5).
_STATE, _PARENT, _START_TIME = 0, 1, 19


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_time(pid: int) -> int:
    """When the process started (clock ticks since boot): with its pid, what tells it from a later one. Read for a
    child not yet reaped, so its /proc entry is there."""
    fields = _stat_fields(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    return int(fields[_START_TIME])


def name_process(name: str) -> None:
    """Set this process's name as ``ps``, ``top`` and psutil show it (``/proc/self/comm``, 15 bytes at most): a
    forked stage keeps its parent's command line, so the name is what tells a map driver, shard or merge apart."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15])


def drive_map(shards: int, parallelism: int, map_one: Callable[[int], int], retries: int = 2) -> ExitCode:
    """Run ``map_one(index)`` for every index in at most ``parallelism`` forked children (forked, not started: the
    interpreter and its imports are this process's already, a third of a CPU-second saved per shard); returns 0
    when all succeeded, else the lowest failed index's exit code (a permanent one stops the others at once; another
    is retried ``retries`` times for that index alone). The children share this process's group, so a cancel's
    signal to the group stops them too."""
    pending = list(range(shards))
    attempts = dict.fromkeys(pending, 0)
    running: dict[int, int] = {}  # pid → shard index
    failures: dict[int, int] = {}
    while pending or running:
        while pending and not failures and len(running) < max(1, parallelism):
            index = pending.pop(0)
            attempts[index] += 1
            running[_fork(map_one, index)] = index
        pid, status = os.wait()
        if pid not in running:
            continue
        index = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            continue
        if code not in PERMANENT_EXIT_CODES and attempts[index] <= retries:
            log.warning("shard process died; rerunning that shard", extra={"shard": index, "exit_code": code})
            pending.insert(0, index)  # this index again, before the others
            continue
        failures[index] = code
        pending.clear()
        for other in running:  # a job that failed for good needs no other shard
            with contextlib.suppress(ProcessLookupError):
                os.kill(other, signal.SIGTERM)
    if not failures:
        return ExitCode.OK
    code = failures[min(failures)]
    return ExitCode(code) if code in PERMANENT_EXIT_CODES else ExitCode.UNEXPECTED


def _fork(map_one: Callable[[int], int], index: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code: int = ExitCode.UNEXPECTED
    try:
        name_process(f"batch-shard-{index}")
        code = map_one(index)
    except SystemExit as stop:  # SIGTERM's handler: the stage unwound, its temporary files removed
        code = stop.code if isinstance(stop.code, int) else ExitCode.UNEXPECTED
    finally:
        os._exit(int(code))  # never back into the driver's loop
