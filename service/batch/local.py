"""The local runner: each stage is a subprocess of the worker that starts it, its traces kept in the job directory.

The map stage's process (``python -m service.batch map <id> all``) is a small driver: it runs the plan's shards in
at most ``FLASK_SVC_BATCH_PARALLELISM`` forked children (each what ``map <id> <index>`` does in an Indexed Job's pod),
reruns an index whose process died for a reason worth a retry (killed, crashed) on its own, and stops every other
index at the first permanent failure, as the Kubernetes runner's Indexed Job does.

``<stage>.pid`` names the process (checked against its command line, so a recycled pid is not mistaken for it);
``<stage>.exit`` is written by a thread that waits for it, for deaths the stage could not report itself. A process
that outlives the worker that started it goes on; its outcome file is what counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
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
from service.privatedirs import FILE_MODE

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
        if self._pid(directory, stage) is not None and self.status(job_id, stage).phase is Phase.RUNNING:
            return self.stage_name(job_id, stage)
        (directory / f"{stage.value}.exit").unlink(missing_ok=True)
        environment = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED} | dict(env)
        log_file = os.open(directory / f"{stage.value}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        with open(log_file, "ab") as output:
            process = subprocess.Popen(
                self.command(job_id, stage),
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: cancel stops it and nothing else
            )
        write_json(directory / f"{stage.value}.pid", {"pid": process.pid})
        threading.Thread(target=self._reap, args=(process, directory, stage), daemon=True).start()
        return self.stage_name(job_id, stage)

    @staticmethod
    def command(job_id: str, stage: Stage) -> list[str]:
        command = [sys.executable, "-m", "service.batch", COMMAND[stage], job_id]
        return [*command, ALL_SHARDS] if COMMAND[stage] == MAP else command

    @staticmethod
    def _reap(process: subprocess.Popen[bytes], directory: Path, stage: Stage) -> None:
        code = process.wait()
        if (directory / f"{stage.value}.pid").exists():  # not when the job's files were removed meanwhile
            with contextlib.suppress(OSError):
                write_json(directory / f"{stage.value}.exit", {"exit_code": code})

    @staticmethod
    def _pid(directory: Path, stage: Stage) -> int | None:
        document = read_json(directory / f"{stage.value}.pid")
        return int(document["pid"]) if document else None

    @staticmethod
    def _alive(pid: int, job_id: str, stage: Stage) -> bool:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z" and COMMAND[stage].encode() in command and job_id.encode() in command

    def status(self, job_id: str, stage: Stage) -> StageStatus:
        directory = self.store.path(job_id)
        pid = self._pid(directory, stage)
        if pid is None:
            return StageStatus(Phase.MISSING)
        if self._alive(pid, job_id, stage):
            return StageStatus(Phase.RUNNING)
        exited = read_json(directory / f"{stage.value}.exit")
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
            pid = self._pid(directory, stage)
            if pid is not None and self._alive(pid, job_id, stage):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                    stopping.append((pid, stage))
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        while stopping and time.monotonic() < deadline:
            stopping = [(pid, stage) for pid, stage in stopping if self._alive(pid, job_id, stage)]
            time.sleep(0.02)
        for pid, _stage in stopping:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


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
        code = map_one(index)
    except SystemExit as stop:  # SIGTERM's handler: the stage unwound, its temporary files removed
        code = stop.code if isinstance(stop.code, int) else ExitCode.UNEXPECTED
    finally:
        os._exit(int(code))  # never back into the driver's loop
