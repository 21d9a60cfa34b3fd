"""The shards bench end to end on 1 MiB (a few seconds): every row measured, the table rendered. No speed asserted."""

from __future__ import annotations

from bench import shards


def test_tiny_run_measures_every_design_and_renders() -> None:
    results = shards.run_bench(lambda _message: None, sizes_mib=(1,), passes=1, shard_mib=1)
    names = [row["what"] for row in results["rows"]]
    assert names[:3] == [
        "sync: analyze_chunks, 16 KiB chunks",
        "map: one shard, fused",
        "tokenize → count (two stages)",
    ]
    assert [name.rsplit(", ", 1)[1] for name in names[3:]] == ["P=1", "P=2"]
    assert all(row["cpu_seconds"] > 0 and row["mib_per_cpu_s"] > 0 for row in results["rows"])
    assert all(row["peak_rss_kib"] > 0 for row in results["rows"][3:])  # the workers' own peaks
    table = shards.render(results).splitlines()
    assert len(table) == 2 + len(names) and table[2].startswith("| sync: ") and "1.00×" in table[2]
