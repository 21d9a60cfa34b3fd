"""One shutdown path under a real gunicorn (service.server.shutdown): SIGTERM to a server running batch on the local
runner, tracing to a real OTLP/HTTP receiver and the metrics port stops each of them, in the stated order, and
leaves nothing running; the master, which serves /metrics itself, keeps answering when its worker is killed."""

from __future__ import annotations

import os
import time

import psutil
import requests

from harness.net import http_status
from harness.otlp import otlp_receiver
from harness.server import Server, running_server
from service.names import ANALYZE_PATH, JOBS_PATH

SERVER_KIND = 2  # SPAN_KIND_SERVER
SHUTDOWN_STEPS = ("stopped batch reconciler", "stopped tracing", "worker stopped", "stopped metrics server")


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _finished_job(server: Server) -> dict[str, object]:
    created = requests.post(
        server.url + JOBS_PATH, data=b"words for the batch " * 100, headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, object] = requests.get(server.url + str(created.headers["Location"]), timeout=10).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {job}")


def test_sigterm_stops_everything_that_was_started_in_order_and_leaves_nothing_running() -> None:
    with otlp_receiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # nothing exported on a schedule: the spans leave at step 5
            "FLASK_SVC_BATCH_RUNNER": "local",
            "FLASK_SVC_BATCH_AUTH": "none",
            "FLASK_SVC_BATCH_RECONCILE_SECONDS": "0.2",
        }
        with running_server(env) as server:
            assert _finished_job(server)["state"] == "succeeded"  # stages ran, the reconciler moved the job on
            assert requests.post(server.url + ANALYZE_PATH, json={"text": "traced"}, timeout=5).ok
            master = psutil.Process(server.process.pid)
            (worker,) = server.workers()  # the master's only child: it serves /metrics itself
            # The stages report before they exit: wait for them, so nothing of the job runs at SIGTERM. The stage
            # host that forked them lives as long as its worker.
            (host,) = [child for child in worker.children() if "service.batch.forkhost" in child.cmdline()]
            _, running = psutil.wait_procs(host.children(recursive=True), timeout=30)
            assert running == []
            # The worker's main thread, its request threads, the reconciler and the span processor; the master's own.
            assert _threads(worker.pid) >= 3 and _threads(master.pid) == 1
            assert not [span for span in receiver.spans if span.kind == SERVER_KIND]  # the stages' spans only
            assert server.stop() == 0
        lines = [record for record in server.json_logs() if record.get("message") in SHUTDOWN_STEPS]
        spans = list(receiver.spans)

    assert [line["message"] for line in lines] == list(SHUTDOWN_STEPS)
    # The reconciler's and the span processor's threads are gone (a local stage's reaper thread may still be writing
    # the exit file of a stage that has exited: it is a daemon and holds nothing).
    threads_left = set(lines[2]["threads_left"])  # type: ignore[arg-type]
    assert not {"batch-reconcile", "OtelBatchSpanRecordProcessor"} & threads_left
    assert any(span.kind == SERVER_KIND and span.name == f"POST {ANALYZE_PATH}" for span in spans)
    for process in (master, worker, host):
        assert not process.is_running(), process
    assert http_status(server.metrics_port, "/metrics") is None  # the port is closed


def test_metrics_answer_from_the_master_while_its_worker_is_killed_and_replaced() -> None:
    """What the metrics process's restart test proved, for the master that replaced it: /metrics answers, from the
    master's one thread, with the totals a dead worker left, while the master replaces the worker."""
    with running_server() as server:
        assert requests.post(server.url + ANALYZE_PATH, json={"text": "counted once"}, timeout=5).ok
        before = requests.get(server.metrics_url, timeout=5).text
        assert "flask_svc_analyzed_bytes_total" in before
        (first,) = server.workers()
        first.kill()
        first.wait(10)
        assert http_status(server.metrics_port, "/metrics") == 200  # at once: nothing of the port was in the worker
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            workers = server.workers()
            if len(workers) == 1 and workers[0].pid != first.pid and http_status(server.port) == 200:
                break
            time.sleep(0.1)
        after = requests.get(server.metrics_url, timeout=5).text
        assert [worker.pid for worker in server.workers()] != [first.pid]
        assert psutil.Process(server.process.pid).num_threads() == 1  # served from the master's loop, no thread
        assert _sample(after, "flask_svc_analyzed_bytes_total") == _sample(before, "flask_svc_analyzed_bytes_total")


def _sample(exposition: str, name: str) -> str:
    (line,) = [line for line in exposition.splitlines() if line.startswith(name)]
    return line
