"""The local runner's stage host (``python -m service.batch.forkhost``): one single-threaded process per worker, its
imports done once, that forks each stage instead of starting a fresh interpreter for it (a fresh one spends a
third of a CPU-second importing before it reads a byte).

Once its imports are done it says ``{"ready": <pid>}`` on stdout. Then it reads one request a line on stdin —
``{"argv", "env", "log", "exit"}`` — and answers on stdout with the child's ``{"pid", "started"}`` (or
``{"error"}``). The child starts its own session (cancel signals its group),
writes to the stage's log, and runs ``python -m service.batch …`` in this interpreter, any other ``argv`` by
``exec``. When a child ends, the host writes its exit status to ``exit`` before it reaps it (so /proc shows the
child, a zombie, until the file is there), unless the job's directory is gone (the job was removed). End of input
ends the host; stages still running go on, as they would without it. So does an idle spell (the first argument,
seconds without a request or a running stage): a worker's host costs a pre-loaded interpreter's memory only while
jobs come, and its starter starts another on the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from service.batch import __main__ as stage_main  # the import this process exists to hold
from service.batch.formats import write_json
from service.batch.local import name_process, start_time
from service.privatedirs import FILE_MODE

_IN_PROCESS = ("-m", "service.batch")


def serve(requests: TextIO, answers: TextIO, idle_seconds: float | None = None) -> None:
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    children: dict[int, tuple[int, dict[str, str]]] = {}  # pidfd → (pid, request)
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    answers.flush()
    last = time.monotonic()
    while True:
        deadline = None if idle_seconds is None or children else last + idle_seconds
        events = selector.select(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not events and deadline is not None and time.monotonic() >= deadline:
            # Idle. A request written after the wait ended finds the pipe closed: the runner starts a new host and
            # sends it again (local.py), so a job start costs a fresh host's start, never the job.
            return
        last = time.monotonic()
        for key, _ in events:
            if key.fd == requests.fileno():
                line = requests.readline()
                if not line:
                    return
                answers.write(json.dumps(_start(json.loads(line), selector, children)) + "\n")
                answers.flush()
            else:
                _ended(key.fd, selector, children)


def _start(request: dict[str, Any], selector: selectors.BaseSelector, children: dict[int, Any]) -> dict[str, Any]:
    try:
        pid = os.fork()
    except OSError as error:
        return {"error": f"cannot fork a stage: {error}"}
    if pid == 0:
        _child(request)  # never returns
    pidfd = os.pidfd_open(pid)
    children[pidfd] = (pid, request)
    selector.register(pidfd, selectors.EVENT_READ)
    return {"pid": pid, "started": start_time(pid)}


def _child(request: dict[str, Any]) -> None:
    code = 1
    try:
        os.setsid()  # its own process group: cancel stops it and nothing else
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(source, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the host's pidfds and selector are not the stage's
        os.environ.clear()
        os.environ.update(request["env"])
        argv = request["argv"]
        if argv[1:3] != list(_IN_PROCESS):
            os.execve(argv[0], argv, request["env"])  # noqa: S606 — the runner's own command, as Popen would run it
        name_process("-".join(["batch", *argv[3:4]]))
        sys.argv = ["python -m service.batch", *argv[3:]]
        code = stage_main.main(argv[3:])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # whatever it was, the child must not return into the host's loop
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _ended(pidfd: int, selector: selectors.BaseSelector, children: dict[int, Any]) -> None:
    pid, request = children.pop(pidfd)
    selector.unregister(pidfd)
    os.close(pidfd)
    ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # not reaped yet: still in /proc
    if ended is not None:
        code = ended.si_status if ended.si_code == os.CLD_EXITED else -ended.si_status
        # Not when the job's files were removed meanwhile; the pid file is no sign: its starter writes it only after
        # this host's answer, and a stage may end before that.
        if Path(request["exit"]).parent.is_dir():
            with contextlib.suppress(OSError):
                write_json(Path(request["exit"]), {"exit_code": code})
    os.waitpid(pid, 0)


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout, float(sys.argv[1]) if len(sys.argv) > 1 else None)
