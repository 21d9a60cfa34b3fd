"""A process tree's CPU time and memory, read from /proc: what the benchmarks report and the memory tests bound.

CPU: requests per second move with whatever else the machine runs; the CPU a server spends per request moves much
less, because time it waits for a core is not charged to it. A tree's CPU is every live member's own user + system
time plus the time of members that have exited: the kernel adds a child's time (and its reaped descendants') to its
parent's ``cutime``/``cstime`` when the parent waits for it, so summing ``utime + stime + cutime + cstime`` over the
live tree counts a worker that exits (and is reaped) during the window once and only once.

Memory: a process's peak resident set is the kernel's high-water mark (VmHWM), which ``reset_peak`` starts again;
not ``ru_maxrss``, which Linux carries over ``exec`` from the parent. A tree's RSS and PSS come from psutil.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class StatTimes:
    """The fields of /proc/<pid>/stat this module needs; times in clock ticks."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        """Own CPU plus that of reaped descendants."""
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> StatTimes:
    """One /proc/<pid>/stat line. The command name sits in parentheses and may hold spaces and ')' itself, so the
    fields are counted from the last ')'."""
    head, closing, rest = text.rpartition(")")
    if not closing or "(" not in head:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    fields = rest.split()  # fields[0] is field 3 (state) of proc(5)
    if len(fields) < 15:
        raise ValueError(f"short /proc/<pid>/stat line: {text[:80]!r}")
    return StatTimes(
        pid=int(head.split("(", 1)[0]),
        ppid=int(fields[1]),  # field 4
        utime=int(fields[11]),  # field 14
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),  # field 17
    )


def read_all(proc: Path = PROC) -> dict[int, StatTimes]:
    """Every process's times; ones that exit while the directory is read are skipped."""
    found = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat(Path(entry.path, "stat").read_text())
        except (OSError, ValueError):
            continue
        found[stat.pid] = stat
    return found


def descendants(root: int, processes: Mapping[int, StatTimes]) -> list[StatTimes]:
    """``root`` and everything below it (root first); empty when root is gone."""
    if root not in processes:
        return []
    children: dict[int, list[int]] = {}
    for stat in processes.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(processes[pid])
        pending.extend(children.get(pid, ()))
    return tree


def tree_ticks(members: Iterable[StatTimes]) -> int:
    return sum(member.ticks for member in members)


def tree_cpu_seconds(root: int, proc: Path = PROC) -> float:
    """CPU seconds the tree under ``root`` has used so far, exited and reaped members included."""
    return tree_ticks(descendants(root, read_all(proc))) / CLOCK_TICKS


# ---- memory -------------------------------------------------------------------------------------------------------


def peak_kib(pid: int | str = "self") -> int:
    """A process's peak resident set (VmHWM) in KiB, since it started or since the last ``reset_peak``."""
    for line in Path(PROC, str(pid), "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise ValueError(f"no VmHWM in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    Path(PROC, str(pid), "clear_refs").write_text("5")


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants (root first); empty when it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process and all its descendants, in MB. PSS splits pages shared after fork fairly."""
    rss = pss = 0
    for proc in tree(pid):
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss / 1e6, pss / 1e6


def process_rss(pid: int) -> list[float]:
    """RSS of each process of the tree in MB, the root (e.g. the gunicorn master) first."""
    sizes = []
    for proc in tree(pid):
        try:
            sizes.append(proc.memory_info().rss / 1e6)
        except psutil.NoSuchProcess:
            continue
    return sizes


class PeakMemory:
    """Samples a process tree's RSS/PSS in the background and keeps the peak."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.rss = self.pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory(self.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
