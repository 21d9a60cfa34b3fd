"""The sharded pipeline's parts beside the synchronous endpoint's domain function, in-process over the same file, in
CPU time (issue 22): ``python -m bench.shards [--mib 8 --passes 1]``. The P=1|2 rows map every shard in fresh worker
processes, then merge; their CPU is summed over the processes, so MiB per CPU-second shows the overhead of sharding
and MiB/s the gain from the second core.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.report import TIMES
from harness.corpus import MIB, generate_text
from harness.proc import peak_kib
from service.analysis import AnalysisOptions, analyze_chunks
from service.batch import shards
from service.batch.formats import read_chunks
from service.batch.stages import ExitCode, StageContext, run
from service.batch.states import JobRecord, Stage, State
from service.batch.store import INPUT, JobStore, new_id
from service.names import CHUNK_BYTES

VOCABULARY = 1_000_000  # the cap is not what is measured


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the pool's workers once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _sync(path: Path) -> None:
    analyze_chunks(read_chunks(path, CHUNK_BYTES), AnalysisOptions(), VOCABULARY).counts.most_common(10)


def _map_one(directory: Path, shard: shards.Shard) -> int:
    shards.map_shard(directory / INPUT, directory, shard, AnalysisOptions(), VOCABULARY)
    return peak_kib()  # this worker's own high-water mark


def _two_stages(store: JobStore, job_id: str) -> None:
    context = StageContext(store, job_id, VOCABULARY, callback_url="", secret="")
    for stage in (Stage.TOKENIZE, Stage.COUNT):
        if run(stage, context) is not ExitCode.OK:
            raise RuntimeError(f"{stage} failed")


def _sharded(directory: Path, plan: list[shards.Shard], processes: int) -> int:
    """Map every shard with ``processes`` fresh interpreters, as pods would be (their imports are counted, and their
    peak memory is their own), then merge in this process; returns the workers' highest peak RSS."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        peaks = pool.starmap(_map_one, [(directory, shard) for shard in plan])
        pool.close()
        pool.join()
    shards.merge(directory, plan, VOCABULARY)
    return max(peaks)


def run_bench(log: Callable[[str], None], sizes_mib: tuple[int, ...] = (8, 64), passes: int = 2, shard_mib: int = 8
              ) -> dict[str, Any]:  # fmt: skip
    """Each design over each size: best wall and best CPU seconds over the passes."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="flask-svc-bench-shards-") as tmp:
        store = JobStore(Path(tmp))
        store.ensure()
        for size in sizes_mib:
            job_id = new_id()
            (store.incoming(job_id) / INPUT).write_bytes(generate_text(size * MIB, seed=17))
            store.commit(JobRecord(id=job_id, state=State.QUEUED, created=0, options={}))
            upload = store.path(job_id) / INPUT
            whole = shards.Shard(0, 0, upload.stat().st_size)
            designs: list[tuple[str, Callable[[], object]]] = [
                ("sync: analyze_chunks, 16 KiB chunks", lambda u=upload: _sync(u)),
                ("map: one shard, fused",
                 lambda u=upload, w=whole: shards.map_shard(u, u.parent, w, AnalysisOptions(), VOCABULARY)),
                ("tokenize → count (two stages)", lambda j=job_id: _two_stages(store, j)),
            ]  # fmt: skip
            if size == max(sizes_mib):
                plan = shards.plan(upload, shard_mib * MIB)
                what = f"map {TIMES}{len(plan)} + merge, P="
                designs += [(f"{what}{n}", lambda p=plan, n=n, u=upload: _sharded(u.parent, p, n)) for n in (1, 2)]
            for what, work in designs:
                measured = report.timed_passes(passes, work, _cpu)
                wall, cpu = min(m[0] for m in measured), min(m[1] for m in measured)
                row = {"what": what, "mib": size, "bytes": whole.size, "seconds": wall, "cpu_seconds": cpu}
                if isinstance(answer := measured[-1][2], int):
                    row["peak_rss_kib"] = answer
                rows.append(row)
                log(f"shards bench: {what}, {size} MiB: {whole.size / MIB / cpu:.1f} MiB per CPU-second")
    for row in rows:
        row["mib_per_s"] = row["bytes"] / MIB / row["seconds"]
        row["mib_per_cpu_s"] = row["bytes"] / MIB / row["cpu_seconds"]
    return {"passes": passes, "rows": rows}


def render(results: dict[str, Any]) -> str:
    return report.render_table("shards", results)


def main(argv: list[str] | None = None) -> int:
    parser = report.cli(__doc__)
    parser.add_argument("--mib", type=int, action="append", help="upload sizes (default: 8 and 64)")
    parser.add_argument("--passes", type=int, default=2, help="passes per measure; the best is kept")
    parser.add_argument("--shard-mib", type=int, default=8, help="target shard size for the P=1|2 rows")
    args = parser.parse_args(argv)
    results = run_bench(report.log, tuple(args.mib or (8, 64)), args.passes, args.shard_mib)
    return report.emit(results, "shards", args.json)


if __name__ == "__main__":
    sys.exit(main())
