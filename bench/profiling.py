"""Where the CPU goes: py-spy samples (``--gil --format raw``: Python CPU time, one ``frame;frame;… count`` line per
stack) summarised by component and by source line, and ``python -X importtime`` summarised by package."""

from __future__ import annotations

import linecache
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.targets import BENCH_VENV
from harness.server import ROOT

PY_SPY = BENCH_VENV / "bin" / "py-spy"
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*):(?P<line>\d+)\)$")
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass(frozen=True)
class Frame:
    function: str
    path: str
    line: int

    @property
    def component(self) -> str | None:
        """The package or project module this frame belongs to; None for the standard library."""
        if "site-packages/" in self.path:
            return self.path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if self.path.startswith(f"{ROOT}/"):
            parts = self.path[len(f"{ROOT}/") :].split("/")
            # service/analysis/tokenizer.py → service.analysis; service/logs.py → service.logs
            return ".".join(parts[:2]).removesuffix(".py") if len(parts) > 1 else parts[0]
        return None

    @property
    def short(self) -> str:
        path = self.path.split("site-packages/", 1)[-1]
        if path.startswith(f"{ROOT}/"):
            path = path[len(f"{ROOT}/") :]
        elif "/lib/python3" in path:
            path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return f"{self.function} ({path}:{self.line})"


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    # A sample read while the process ran on (py-spy --nonblocking) can hold garbage instead of a frame.
    if match is None or not match["path"].startswith(("/", "<")):
        return Frame(text.strip() if match is None else match["function"], "", 0)
    return Frame(match["function"], match["path"], int(match["line"]))


def parse_collapsed(text: str) -> list[tuple[tuple[Frame, ...], int]]:
    """``a;b;c 12`` lines → (frames root-first, sample count)."""
    lines = (line.rpartition(" ") for line in text.splitlines())
    return [(tuple(map(parse_frame, stack.split(";"))), int(n)) for stack, _, n in lines if stack and n.isdigit()]


# Costs worth naming in every profile, counted inclusively (a sample counts when any frame of its stack matches), so
# the numbers say at a glance whether a known cost is still there. Only for code that does not wrap the whole
# request: OpenTelemetry's WSGI middleware sits under everything, so its own cost is read from the component table.
WATCH: tuple[tuple[str, Callable[[Frame], bool]], ...] = (
    ("access log line (service.logs GunicornLogger.access)", lambda f: f.function == "GunicornLogger.access"),
    ("request validation (flask-openapi3 _validate_request)", lambda f: f.function == "_validate_request"),
    ("pydantic JSON-schema generation (model_json_schema)", lambda f: f.function.endswith("model_json_schema")),
    ("request id and hooks (service.requestctx)", lambda f: f.component == "service.requestctx"),
    ("the analysis pipeline (service.analysis)", lambda f: f.component == "service.analysis"),
    ("response building (jsonify)", lambda f: f.function == "jsonify"),
)


@dataclass
class Profile:
    title: str
    samples: int = 0
    components: list[tuple[str, float]] = field(default_factory=list)  # share of samples, largest first
    lines: list[tuple[str, float, str]] = field(default_factory=list)  # (frame, share, source line)
    watched: list[tuple[str, float]] = field(default_factory=list)  # inclusive shares of the WATCH list
    note: str = ""


def owner(frames: tuple[Frame, ...]) -> str:
    """The innermost non-stdlib frame's component: time spent in ``logging`` for an access line belongs to whoever
    logged; all-stdlib stacks are reported under their leaf module."""
    component = next((c for frame in reversed(frames) if (c := frame.component) is not None), None)
    if component is not None:
        return component
    leaf = frames[-1] if frames else Frame("?", "", 0)
    return f"stdlib {Path(leaf.path).stem}" if leaf.path.startswith("/") else "other"


def summarise(title: str, stacks: Iterable[tuple[tuple[Frame, ...], int]], top: int = 12, note: str = "") -> Profile:
    by_component, by_line, watched = Counter[str](), Counter[Frame](), Counter[str]()
    for frames, count in (stack for stack in stacks if stack[0]):
        watched.update({label: count for label, matches in WATCH if any(map(matches, frames))})
        by_component[owner(frames)] += count
        # The innermost frame in project or package code: a C call (findall, Counter.update) shows as its caller.
        by_line[next((f for f in reversed(frames) if f.component is not None), frames[-1])] += count
    profile = Profile(title, total := by_component.total(), note=note)
    if total:
        profile.components = [(name, count / total) for name, count in by_component.most_common(top)]
        profile.lines = [(frame.short, count / total, linecache.getline(frame.path, frame.line).strip())
                         for frame, count in by_line.most_common(top)]  # fmt: skip
        profile.watched = [(label, watched[label] / total) for label, _ in WATCH if watched[label]]
    return profile


def available() -> bool:
    return PY_SPY.exists() and shutil.which("wrk") is not None


def _py_spy(out: Path, rate: int = 250) -> list[str]:
    return [str(PY_SPY), "record", f"--rate={rate}", "--gil", "--full-filenames", "--format=raw", f"--output={out}"]


def record_command(command: list[str], out: Path, timeout: float) -> None:
    subprocess.run([*_py_spy(out), "--", *command], cwd=ROOT, check=True, timeout=timeout, capture_output=True)


def profile_under_load(title: str, pid: int, seconds: float, load: Callable[[], object], tmp: Path) -> Profile:
    """Sample ``pid`` while ``load()`` (a wrk run a little longer than ``seconds``) keeps it busy."""
    out = tmp / f"{re.sub(r'[^a-z0-9]+', '-', title.lower())}.txt"
    cmd = [*_py_spy(out), f"--pid={pid}", f"--duration={max(1, round(seconds))}", "--nonblocking"]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    try:
        load()
    finally:
        spy.wait(timeout=seconds + 30)
    return summarise(title, parse_collapsed(out.read_text() if out.exists() else ""))


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """``-X importtime`` lines → (module, self µs, cumulative µs, nesting depth)."""
    found = (_IMPORTTIME.match(line) for line in stderr.splitlines())
    return [(m[4], int(m[1]), int(m[2]), (len(m[3]) - 1) // 2) for m in found if m]


def import_cost_by_package(rows: list[tuple[str, int, int, int]], top: int = 10) -> list[tuple[str, float]]:
    """Milliseconds spent importing each top-level package's own modules (self time summed), largest first."""
    by_package = Counter[str]()
    for module, self_us, _cumulative_us, _depth in rows:
        by_package[module.split(".")[0]] += self_us
    return [(name, us / 1000) for name, us in by_package.most_common(top)]
