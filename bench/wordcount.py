"""Word-count throughput of the service's pipeline (``POST /api/v1/wordcount``'s: decode, NFC check, tokenize, a
Counter of every word, 16 KiB chunks, file read included) beside `wc -w` on the same generated file (issue 2), with
two Python floors that show where the time goes: ``python -m bench.wordcount [--mb 8 --json out.json]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import report
from harness.corpus import MIB, generate_text
from service.analysis import AnalysisOptions, analyze_chunks
from service.analysis.tokenizer import ASCII_WORD
from service.batch.formats import read_chunks
from service.names import CHUNK_BYTES  # what the service's handlers read per step


@dataclass
class Measure:
    name: str
    seconds: float  # best of the passes
    mb_per_s: float
    words: int
    note: str = ""


def wc_words(path: Path, locale: str) -> int:
    env = {**os.environ, "LC_ALL": locale}
    return int(
        subprocess.run(["wc", "-w", str(path)], env=env, capture_output=True, text=True, check=True).stdout.split()[0]
    )


def pipeline_words(path: Path, chunk: int = CHUNK_BYTES) -> tuple[int, float, float]:
    """Words counted, plus the pipeline's own split: seconds decoding+tokenizing, seconds counting."""
    analysis = analyze_chunks(read_chunks(path, chunk), AnalysisOptions())
    analysis.counts.most_common(10)
    return analysis.counts.total, analysis.stats.tokenize_ns / 1e9, analysis.stats.consume_ns / 1e9


def measure(path: Path, passes: int, python_only: bool = False) -> list[Measure]:
    """Each counter's best pass over ``path`` (the pipeline alone with ``python_only``)."""
    split: dict[str, float] = {}

    def pipeline() -> int:
        words, tokenize_s, count_s = pipeline_words(path)
        split.update(tokenize=tokenize_s, count=count_s)
        return words

    counters: list[tuple[str, Callable[[], int], str]] = [
        ("wc -w (LC_ALL=C)", lambda: wc_words(path, "C"), "byte locale: the fast path"),
        ("wc -w (LC_ALL=C.UTF-8)", lambda: wc_words(path, "C.UTF-8"), "multibyte-aware"),
        ("flask-svc pipeline, 16 KiB chunks", pipeline, "full frequencies, as POST /api/v1/wordcount"),
        ("pipeline, 1 MiB chunks", lambda: pipeline_words(path, MIB)[0], "per-chunk overhead check"),
        ("floor: Counter(bytes.split())", lambda: sum(Counter(path.read_bytes().split()).values()),
         "no tokenizer: whitespace runs like wc"),
        ("floor: ASCII word regex only", lambda: len(ASCII_WORD.findall(path.read_bytes().decode().lower())),
         "lower() + findall, no counting"),
    ]  # fmt: skip
    results = []
    for name, work, note in counters[2:3] if python_only else counters:
        timed = report.timed_passes(passes, work)
        seconds = min(t[0] for t in timed)
        if work is pipeline:  # the last pass's split
            total = split["tokenize"] + split["count"]
            note += f"; decode+tokenize {split['tokenize'] / total:.0%}, Counter {split['count'] / total:.0%}"
        results.append(Measure(name, seconds, path.stat().st_size / 1e6 / seconds, timed[-1][2], note))
    return results


def render(results: list[Measure], file_mb: float, passes: int | str = "?") -> str:
    data = {"bytes": file_mb * 1e6, "measures": results}
    return report.render_table("wordcount_table", "Generated prose", data, passes)


def main(argv: list[str] | None = None) -> int:
    parser = report.cli(__doc__.split("\n\n")[0], json_out=False)
    parser.add_argument("--mb", type=float, default=32, help="size of the generated file in MiB (default 32)")
    parser.add_argument("--passes", type=int, default=3, help="passes per measurement; the best is kept")
    parser.add_argument("--unicode-share", type=float, default=0.0, help="share of non-ASCII words (0..1)")
    parser.add_argument("--file", type=Path, help="measure this file instead of generating one")
    parser.add_argument("--python-only", action="store_true", help="only the pipeline (used under the profiler)")
    parser.add_argument("--json", type=Path, help="also write the measures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flask-svc-wc-") as tmp:
        path = args.file or Path(tmp, "words.txt")
        if args.file is None:
            path.write_bytes(generate_text(int(args.mb * MIB), unicode_share=args.unicode_share))
        results, size = measure(path, args.passes, args.python_only), path.stat().st_size
    print(render(results, size / 1e6, args.passes))
    if args.json:
        args.json.write_text(json.dumps({"bytes": size, "measures": [asdict(m) for m in results]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
