"""The chart README's parameter table is what readme-generator-for-helm makes of values.yaml's `## @param` lines."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.chart.conftest import CHART


def test_readme_parameters_are_current(readme_generator: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    shutil.copy(CHART / "README.md", readme)
    proc = subprocess.run(
        [str(readme_generator), "--values", str(CHART / "values.yaml"), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The generator also fails when a value has no `## @param` line, or a `## @param` names no value.
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert readme.read_text() == (CHART / "README.md").read_text(), "chart README is stale: run `make chart-readme`"
