"""A server tree's CPU time from /proc: the stat parser, the tree walk, and the arithmetic across an exiting worker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import proc as cputime


def _stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    # proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    # cutime cstime priority nice num_threads …
    return f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194304 120 0 0 0 {utime} {stime} {cutime} {cstime} 20 0 5 0\n"


def _proc(tmp_path: Path, *lines: str) -> Path:
    for line in lines:
        pid = line.split(" ", 1)[0]
        Path(tmp_path, pid).mkdir(parents=True)
        Path(tmp_path, pid, "stat").write_text(line)
    Path(tmp_path, "self").mkdir()  # not a pid: ignored
    Path(tmp_path, "uptime").write_text("1.0 1.0\n")
    return tmp_path


def test_stat_line_is_parsed_even_when_the_command_name_holds_spaces_and_parentheses() -> None:
    stat = cputime.parse_stat(_stat_line(4242, "gunicorn: worker [svc) (x]", 4241, 150, 30, 7, 3))
    assert stat == cputime.StatTimes(pid=4242, ppid=4241, utime=150, stime=30, cutime=7, cstime=3)
    assert stat.ticks == 190


@pytest.mark.parametrize("text", ["", "4242 gunicorn S 1 2 3", "4242 (gunicorn) S 1 2 3 4 5"])
def test_a_line_that_is_not_a_stat_line_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="stat line"):
        cputime.parse_stat(text)


def test_the_tree_is_the_root_and_all_its_descendants_only(tmp_path: Path) -> None:
    proc = _proc(
        tmp_path,
        _stat_line(1, "init", 0, 5, 5),
        _stat_line(10, "bench", 1, 1000, 1000),  # the bench process: the server's parent, not in its tree
        _stat_line(20, "master", 10, 100, 20),
        _stat_line(21, "worker", 20, 300, 50),
        _stat_line(22, "worker", 20, 200, 40),
        _stat_line(23, "helper", 21, 7, 3),
        _stat_line(30, "other", 1, 9999, 9999),
    )
    processes = cputime.read_all(proc)
    assert sorted(s.pid for s in cputime.descendants(20, processes)) == [20, 21, 22, 23]
    assert cputime.descendants(20, processes)[0].pid == 20
    assert cputime.tree_ticks(cputime.descendants(20, processes)) == 120 + 350 + 240 + 10
    assert cputime.tree_cpu_seconds(20, proc) == pytest.approx(720 / cputime.CLOCK_TICKS)
    assert cputime.descendants(99, processes) == []
    assert cputime.tree_cpu_seconds(99, proc) == 0


def test_a_worker_that_exits_in_the_window_is_counted_once_through_its_parents_children_times(tmp_path: Path) -> None:
    before = cputime.tree_ticks(
        cputime.descendants(20, cputime.read_all(_proc(tmp_path / "a", *_tree(worker_21=(300, 50)))))
    )
    # Worker 21 used 40 more ticks, exited and was reaped: its 390 ticks now sit in the master's cutime/cstime,
    # and a replacement worker 24 has used 15 since it was forked.
    after_lines = [
        _stat_line(20, "master", 10, 101, 20, cutime=340, cstime=50),
        _stat_line(22, "worker", 20, 230, 45),
        _stat_line(24, "worker", 20, 12, 3),
    ]
    after = cputime.tree_ticks(cputime.descendants(20, cputime.read_all(_proc(tmp_path / "b", *after_lines))))
    assert after - before == 1 + 40 + (30 + 5) + 15


def _tree(worker_21: tuple[int, int]) -> list[str]:
    return [
        _stat_line(20, "master", 10, 100, 20),
        _stat_line(21, "worker", 20, *worker_21),
        _stat_line(22, "worker", 20, 200, 40),
    ]


def test_a_real_child_that_burns_cpu_and_exits_is_still_in_the_tree_total() -> None:
    """Against the real /proc: a shell whose child spins 0.3 s of CPU and exits (the shell reaps it), then sleeps."""
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    shell = subprocess.Popen(["/bin/sh", "-c", f'"{sys.executable}" -c "$SPIN"; exec sleep 30'], env={"SPIN": spin})
    try:
        deadline = time.monotonic() + 20
        while _comm(shell.pid) != "sleep" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _comm(shell.pid) == "sleep"
        total = cputime.tree_cpu_seconds(shell.pid)
    finally:
        shell.kill()
        shell.wait()
    assert 0.25 <= total < 5


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
