"""gunicorn's configuration, read from the environment through the one settings object.

Loaded by ``gunicorn --config python:service.server.gunicorn_conf`` (and by ``python -m service``). A bad variable stops
the process here, before any port is bound, with one line naming it. The settings read here are the only ones: the
logger, the worker class and the app (``wsgi_app``, built in each worker) are all given them. The hooks at the end
open what the master serves beside the workers (the metrics port) and hand every stop to ``service.server.shutdown``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from service.config import ConfigError, address, load_settings, prepare_directories
from service.server import features
from service.server.metrics_server import MetricsServer, mark_worker_dead, reset_multiprocess_dir

if TYPE_CHECKING:
    from flask import Flask

try:
    _settings = load_settings()
    prepare_directories(_settings)  # a planted directory stops the start before anything in it is read or removed
except ConfigError as error:
    print(f"flask-svc: configuration error: {error}", file=sys.stderr)
    sys.exit(features.REFUSED)

# Must be in the environment before anything imports prometheus_client (workers inherit it): nothing imported
# above this line may import it.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _settings.multiproc_dir

# Each feature's checks before any worker starts (see service.server.features): a model file that must not be opened
# stops the start here. They import the app's modules (not the app: importing them starts no thread and opens
# nothing), once, so that the workers forked from this process share their pages and do not import them again. Not
# under reload: a worker started after a change must import the changed code, not inherit this process's copy, so
# there the checks run in a child interpreter.
if _settings.reload:
    _refusal, _startup_notes = features.refusal_and_notes_apart()
else:
    _refusal, _startup_notes = features.refusal(_settings), features.startup_notes(_settings)
if _refusal:
    print(f"flask-svc: {_refusal}", file=sys.stderr)
    sys.exit(features.REFUSED)

from service.logs import gunicorn_logger
from service.names import LIFECYCLE_EXTENSION
from service.server import shutdown
from service.server.worker import service_worker

# The metrics port: opened once the master is ready, and served by its loop (see service.server.metrics_server).
_metrics = MetricsServer(_settings.host, _settings.metrics_port) if _settings.metrics_enabled else None


def application() -> Flask:
    """The app gunicorn serves, built in each worker (after fork) with the settings read above."""
    from service import create_app

    return create_app(_settings)


# The one place the app is named: `gunicorn --config python:service.server.gunicorn_conf` and `python -m service`
# need nothing more (gunicorn finds this module in sys.modules in the worker: the settings are not read again).
wsgi_app = f"{__name__}:application()"


bind = [address(_settings.host, _settings.port)]
worker_class = service_worker(_settings)  # gthread that reads request heads in its loop (see the module)
workers = _settings.workers
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
# Heartbeat files on tmpfs: a disk-backed /tmp can stall workers into the timeout under I/O pressure.
_SHM = "/dev/shm"  # noqa: S108 — a tmpfs, which is the point
worker_tmp_dir = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
# gunicorn ≥ 25 opens a control socket by default: it fails on a read-only root and exposes kill commands.
control_socket_disable = True
preload_app = False  # the app and its tracing (threads, sockets) are made in each worker, after fork
reload = _settings.reload
loglevel = _settings.log_level
logger_class = gunicorn_logger(_settings)
accesslog = "-"
errorlog = "-"
proc_name = "flask-svc"
forwarded_allow_ips = "127.0.0.1,::1"


def on_starting(server: Any) -> None:
    reset_multiprocess_dir(_settings.multiproc_dir)


def when_ready(server: Any) -> None:
    for note in _startup_notes:
        server.log.warning(note)
    if _metrics is None:
        server.log.info("metrics off (FLASK_SVC_METRICS=false)")
        return
    _metrics.log = server.log
    _metrics.start()  # a port that cannot be bound stops the start
    _metrics.serve_in(server)


def pre_fork(server: Any, worker: Any) -> None:
    threads = running_threads()
    if threads > 1:  # a regression: something started a thread in the master
        server.log.error("forking a worker with %d threads running in the master: the worker may deadlock", threads)


def post_fork(server: Any, worker: Any) -> None:
    if _metrics is not None:
        _metrics.close_in_worker()


def post_worker_init(worker: Any) -> None:
    shutdown.drain_on_sigterm(worker.wsgi.extensions[LIFECYCLE_EXTENSION])


def worker_exit(server: Any, worker: Any) -> None:
    # The dev loop's error app (a syntax error under reload) is no Flask app: it started nothing. gunicorn also calls
    # this in the master for a worker already gone, whose app was never loaded there.
    if hasattr(worker.wsgi, "extensions"):
        shutdown.stop_worker(worker.wsgi)


def on_exit(server: Any) -> None:
    shutdown.stop_master(_metrics)


def child_exit(server: Any, worker: Any) -> None:
    mark_worker_dead(worker.pid)


def running_threads() -> int:
    """This process's threads as the kernel counts them (Python's own and any a library started), which is what
    Python 3.12 checks before it forks."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux
        return threading.active_count()
