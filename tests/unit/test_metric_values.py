"""service.metrics' multiprocess value class against prometheus_client's own: the same operations leave the same
samples in the files (read back by prometheus_client's collector), and a forked child writes to its own file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from harness.server import ROOT

# The same metric operations, made with the value class the first argument names: "service" (service.metrics'
# own, installed at its import) or "upstream" (prometheus_client's MultiProcessValue). The process forks once; the
# child records too.
_SCRIPT = """
import os, sys
if sys.argv[1] == "service":
    import service.metrics
from prometheus_client import Counter, Gauge, Histogram, values
expected = "service.metric_values" if sys.argv[1] == "service" else "prometheus_client.values"
assert values.ValueClass.__module__ == expected
counter = Counter("c", "a counter", ["kind"])
gauge = Gauge("g", "a gauge", multiprocess_mode="livesum")
maximum = Gauge("m", "a max gauge", ["who"], multiprocess_mode="max")
histogram = Histogram("h", "a histogram", ["route"], buckets=(0.01, 0.1, 1.0))
counter.labels("a").inc()
counter.labels("b").inc(2.5)
gauge.inc(); gauge.inc(); gauge.dec()
maximum.labels("x").set(7)
for seconds in (0.003, 0.05, 0.05, 0.7, 3.0):
    histogram.labels("/r").observe(seconds)
pid = os.fork()
if pid == 0:
    counter.labels("a").inc(10)
    gauge.inc()
    histogram.labels("/r").observe(0.02)
    maximum.labels("x").set(9)
    os._exit(0)
os.waitpid(pid, 0)
counter.labels("a").inc()
histogram.labels("/s").observe(0.5)
print(os.getpid(), pid)
"""


def _samples(kind: str, directory: Path) -> tuple[set[tuple[str, tuple[tuple[str, str], ...], float]], list[str]]:
    directory.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, kind],
        cwd=ROOT,
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    parent, child = done.stdout.split()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    samples = {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid")), sample.value)
        for family in registry.collect()
        for sample in family.samples
    }
    files = sorted(path.name.replace(parent, "PARENT").replace(child, "CHILD") for path in directory.iterdir())
    return samples, files


def test_the_service_value_class_records_what_prometheus_client_s_own_records(tmp_path: Path) -> None:
    ours, our_files = _samples("service", tmp_path / "service")
    theirs, their_files = _samples("upstream", tmp_path / "upstream")
    assert ours == theirs
    assert our_files == their_files
    # The child's writes went to its own files, starting from zero there.
    assert "counter_CHILD.db" in our_files
    assert ("c_total", (("kind", "a"),), 12.0) in ours
    assert ("g", (), 2.0) in ours
    assert ("m", (("who", "x"),), 9.0) in ours
    assert ("h_count", (("route", "/r"),), 6.0) in ours
