"""CPU time a server's process tree spent over a load window, read from /proc.

Requests per second move with whatever else the machine runs; the CPU a server spends per request moves much less,
because time it waits for a core is not charged to it. A tree's CPU is every live member's own user + system time
plus the time of members that have exited: the kernel adds a child's time (and its reaped descendants') to its
parent's ``cutime``/``cstime`` when the parent waits for it, so summing ``utime + stime + cutime + cstime`` over the
live tree counts a worker that exits (and is reaped) during the window once and only once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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


def per_cpu_second(requests: int, cpu_s: float | None) -> float | None:
    """Requests per CPU-second; None when no CPU was measured (a window shorter than one clock tick)."""
    if not cpu_s or cpu_s <= 0:
        return None
    return requests / cpu_s
