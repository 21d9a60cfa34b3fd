"""schemathesis against a running server, for the fuzz tests: every generated case must pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def run_schemathesis(schema: str, workdir: Path, *options: str, seed: int, max_examples: int, min_cases: int) -> None:
    """Run every check (minus what ``options`` exclude) against ``schema`` (a URL or a file); assert that it
    generated at least ``min_cases`` cases and that all of them passed."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            schema,
            "--checks",
            "all",
            *options,
            "--max-examples",
            str(max_examples),
            "--seed",
            str(seed),
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated, output[-2000:]
    assert int(generated.group(1)) >= min_cases and generated.group(1) == generated.group(2), generated.group(0)
