"""The local runner: each stage is a subprocess of the worker that starts it, its traces kept in the job directory.

``<stage>.pid`` names the process (checked against its command line, so a recycled pid is not mistaken for it);
``<stage>.exit`` is written by a thread that waits for it, for deaths the stage could not report itself. A process
that outlives the worker that started it goes on; its outcome file is what counts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from service.batch.formats import read_json, write_json
from service.batch.runner import Phase, StageStatus
from service.batch.states import Stage
from service.batch.store import JobStore
from service.privatedirs import FILE_MODE

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

    def start(self, job_id: str, stage: Stage, env: Mapping[str, str]) -> str:
        directory = self.store.path(job_id)
        if self._pid(directory, stage) is not None and self.status(job_id, stage).phase is Phase.RUNNING:
            return self.stage_name(job_id, stage)
        (directory / f"{stage.value}.exit").unlink(missing_ok=True)
        environment = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED} | dict(env)
        log_file = os.open(directory / f"{stage.value}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        with open(log_file, "ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "service.batch", stage.value, job_id],
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
        return state != "Z" and stage.value.encode() in command and job_id.encode() in command

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
