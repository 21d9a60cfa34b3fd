"""The parts of gunicorn that are not its documented interface and that the server relies on, pinned: a gunicorn
upgrade that renames or moves one fails here, by name, before a request stalls under a real server.

The worker (``service.server.worker``) overrides gthread's connection path and uses its state; of
benoitc/gunicorn#3519 (in 27.0.1) it relies on ``TConn.data_ready`` (a head the loop has read is handed over marked
ready, so the thread does not wait for bytes already taken off the socket) and on ``murder_pending`` being called
every round of the loop and of the drain. The master serves the metrics port (``service.server.metrics_server``) in
place of its wait for signals (``Arbiter.wait_for_signals``, its queue and wake-up request) and after each reap while
it stops, and closes its copies of the port in a worker after fork (``post_fork``, before the worker starts)."""

from __future__ import annotations

import inspect
import socket
from collections import deque

from gunicorn import util
from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.wsgi import Response
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from service.server.worker import ServiceWorker


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_methods_the_worker_overrides_keep_their_signatures() -> None:
    for name in ("accept", "on_client_socket_readable", "enqueue_req", "finish_request", "murder_pending"):
        assert name in vars(ServiceWorker) and _parameters(getattr(ServiceWorker, name)) == _parameters(
            getattr(ThreadWorker, name)
        ), name
    assert _parameters(ThreadWorker.accept) == ["self", "listener"]
    assert _parameters(ThreadWorker.on_client_socket_readable) == ["self", "conn", "client"]
    assert _parameters(ThreadWorker.enqueue_req) == ["self", "conn"]
    assert _parameters(ThreadWorker.finish_request) == ["self", "conn", "fs"]
    assert _parameters(ThreadWorker.murder_pending) == ["self"]


def test_the_loop_calls_murder_pending_every_round_and_while_draining() -> None:
    assert inspect.getsource(ThreadWorker.run).count("self.murder_pending()") == 2


def test_a_connection_marked_data_ready_is_served_from_its_buffer_without_waiting() -> None:
    assert "not conn.data_ready" in inspect.getsource(ThreadWorker.handle)
    assert "self.enqueue_req(conn)" in inspect.getsource(ThreadWorker.finish_request)  # read-ahead: a pipelined head
    server, client = socket.socketpair()
    try:
        conn = TConn(Config(), server, ("127.0.0.1", 1), ("127.0.0.1", 2))
        conn.init()  # the HTTP/1 parser; reads nothing
        conn.parser.unreader.unread(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        conn.data_ready = True
        assert conn.wait_for_data(60) is True  # at once: nothing is on the socket
        request = next(conn.parser)
        assert (request.method, request.path) == ("GET", "/x")
        assert conn.parser.unreader.take_buffered() == b""
        conn.set_timeout()
        assert isinstance(conn.timeout, float)
    finally:
        server.close()
        client.close()


def test_the_worker_state_the_loop_reads_and_writes() -> None:
    cfg = Config()
    worker = ThreadWorker(1, 0, [], None, 30, cfg, Logger(cfg))
    try:
        assert isinstance(worker.keepalived_conns, deque) and worker.nr_conns == 0
        assert worker.max_keepalived == cfg.worker_connections - cfg.threads
        assert worker.alive is True and worker.poller is None  # made in init_process
    finally:
        worker.tmp.close()
    assert STOP_KEEPALIVE_LINGER > 0


def test_error_pages_go_through_util_write_error_looked_up_on_each_call() -> None:
    assert _parameters(util.write_error) == ["sock", "status_int", "reason", "mesg"]
    assert "util.write_error(" in inspect.getsource(Worker.handle_error)
    assert _parameters(util.write_nonblock)[:2] == ["sock", "data"]
    assert callable(Response.force_close) and callable(Response.start_response)


def test_the_date_header_goes_through_util_http_date_looked_up_on_each_call() -> None:
    assert "util.http_date()" in inspect.getsource(Response.default_headers)
    assert _parameters(util.http_date) == ["timestamp"]


def test_the_master_calls_manage_workers_every_round_and_on_exit_after_the_workers_stopped() -> None:
    assert "self.manage_workers()" in inspect.getsource(Arbiter.run)
    assert "manage_workers" not in inspect.getsource(Arbiter.stop)
    halt = inspect.getsource(Arbiter.halt)
    assert halt.index("self.stop()") < halt.index("self.cfg.on_exit(self)")


def test_the_master_waits_for_signals_through_a_method_and_reaps_between_short_sleeps_while_it_stops() -> None:
    run = inspect.getsource(Arbiter.run)
    assert "self.wait_for_signals(timeout=1.0)" in run
    assert _parameters(Arbiter.wait_for_signals) == ["self", "timeout"]
    signal_handlers = inspect.getsource(Arbiter.signal) + inspect.getsource(Arbiter.signal_chld)
    assert signal_handlers.count("self.SIG_QUEUE.put_nowait(sig)") == 2
    assert "self.SIG_QUEUE.put_nowait(self.WAKEUP_REQUEST)" in inspect.getsource(Arbiter.wakeup)
    stop = inspect.getsource(Arbiter.stop)
    assert stop.index("self.reap_workers()") < stop.index("time.sleep(0.1)")


def test_a_worker_runs_post_fork_before_it_starts() -> None:
    spawn = inspect.getsource(Arbiter.spawn_worker)
    fork, post_fork = spawn.index("os.fork()"), spawn.index("self.cfg.post_fork(self, worker)")
    assert fork < post_fork < spawn.index("worker.init_process()")
