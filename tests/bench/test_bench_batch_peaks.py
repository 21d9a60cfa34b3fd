"""`bench.batch --peaks`: a small job through a real server, every process of the pipeline named with its peak."""

from __future__ import annotations

from bench import batch


def test_every_stage_process_and_the_worker_report_a_peak() -> None:
    result = batch.run_peaks(lambda _message: None, size_mib=3, shard_mib=1, parallelism=2)
    peaks = result["peaks"]
    assert {"gunicorn worker", "stage host", "map driver", "map shard", "merge"} <= set(peaks), peaks
    assert len(peaks["map shard"]) == 3 and len(peaks["merge"]) == 1  # one per shard, from the outcome files
    assert len(peaks["map driver"]) == 1 and len(peaks["stage host"]) == 1
    assert all(kib > 1024 for kibs in peaks.values() for kib in kibs)  # an interpreter is more than 1 MiB
    table = batch.render_peaks(result)
    assert "| map shard | 3 |" in table and "3 MiB job, 1 MiB shards, P=2" in table
