"""mk/toolcache.sh: a tool is built once per machine and linked; a cache directory others may write is not used."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "mk" / "toolcache.sh"
# The build command counts its runs in a file beside the cache, so a second build would show.
BUILD = ["sh", "-ec", 'echo built >> "$RUNS"; echo tool > "$TOOL_DIR/tool"']


def _cache(tmp_path: Path, root: Path, link: Path, inputs: str = "tool 1.0") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLASK_SVC_TOOL_CACHE": str(root),
        "HOME": str(tmp_path / "home"),
        "RUNS": str(tmp_path / "runs"),
    }
    env.pop("XDG_CACHE_HOME", None)
    return subprocess.run(["bash", str(SCRIPT), str(link), inputs, *BUILD], env=env, text=True, capture_output=True)


def test_a_tool_is_built_once_and_linked_into_each_clone(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first, second = tmp_path / "a" / ".tools" / "tool", tmp_path / "b" / ".tools" / "tool"
    assert _cache(tmp_path, root, first).returncode == 0
    assert _cache(tmp_path, root, second).returncode == 0
    assert (tmp_path / "runs").read_text() == "built\n"
    assert first.resolve() == second.resolve() and (second / "tool").read_text() == "tool\n"
    assert _cache(tmp_path, root, second, inputs="tool 1.1").returncode == 0  # another pin: another entry
    assert (tmp_path / "runs").read_text() == "built\nbuilt\n" and first.resolve() != second.resolve()


def test_a_cache_that_others_may_write_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(0o777)
    link = tmp_path / "clone" / ".tools" / "tool"
    result = _cache(tmp_path, root, link)
    assert result.returncode == 0, result.stderr
    assert "is open to others" in result.stderr
    assert link.resolve().parent == (tmp_path / "home" / ".cache" / "flask-svc-tools").resolve()
    assert list(root.iterdir()) == []  # nothing built or locked where others could have planted it
