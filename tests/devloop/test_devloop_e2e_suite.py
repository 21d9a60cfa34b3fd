"""The e2e suite as `make test` sees it: collected, all marked e2e, skipped with its reason without a cluster,
and failing instead of skipping when FLASK_SVC_E2E_REQUIRED=true (the e2e workflow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.devloop.conftest import ROOT

E2E = "tests/e2e"


def pytest_run(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # No cluster: an empty kubeconfig. CI and outer pytest options are dropped so that only this suite decides.
    dropped = ("CI", "PYTEST_ADDOPTS")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_SVC_E2E_", "KUBE")) and k not in dropped}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**base, "KUBECONFIG": str(kubeconfig), **env},
    )


@pytest.fixture(scope="module")
def without_a_cluster(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The whole suite run once without a cluster, every test named (-v): two tests read it (each run costs seconds
    of imports)."""
    return pytest_run("-m", "e2e", E2E, "-rs", "-v", tmp_path=tmp_path_factory.mktemp("e2e"))


def test_the_suite_is_collected_and_entirely_marked_e2e(
    tmp_path: Path, without_a_cluster: subprocess.CompletedProcess[str]
) -> None:
    ids = [line.split()[0] for line in without_a_cluster.stdout.splitlines() if line.startswith(E2E) and "::" in line]
    assert len(ids) >= 10, without_a_cluster.stdout
    for needle in ("rolling_restart", "scales_out", "helm_test", "readyz", "analyze", "metrics", "security"):
        assert any(needle in i for i in ids), f"no e2e test about {needle}"
    unmarked = pytest_run("--collect-only", "-q", "-m", "not e2e", E2E, tmp_path=tmp_path)
    assert "no tests collected" in unmarked.stdout or "deselected" in unmarked.stdout, unmarked.stdout
    assert not [line for line in unmarked.stdout.splitlines() if "::" in line]


def test_without_a_cluster_every_test_skips_with_the_reason(
    without_a_cluster: subprocess.CompletedProcess[str],
) -> None:
    out = without_a_cluster
    assert out.returncode == 0, out.stdout + out.stderr
    assert " passed" not in out.stdout and "failed" not in out.stdout and "error" not in out.stdout
    assert "skipped" in out.stdout
    assert "no Kubernetes cluster reachable" in out.stdout and "FLASK_SVC_E2E_REQUIRED=true" in out.stdout


def test_required_turns_no_cluster_into_a_failure(tmp_path: Path) -> None:
    out = pytest_run("-m", "e2e", E2E, "-x", tmp_path=tmp_path, FLASK_SVC_E2E_REQUIRED="true")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no Kubernetes cluster reachable" in out.stdout
    assert "skipped" not in out.stdout


def test_the_scopes_that_run_side_by_side_are_modules_of_the_suite_and_start_longest_first() -> None:
    from tests.e2e.conftest import MAIN_RELEASE_SCOPE, SCOPES_LONGEST_FIRST, LongestFirst, e2e_scope

    modules = {path.stem for path in (ROOT / E2E).glob("test_e2e_*.py")}
    assert set(SCOPES_LONGEST_FIRST) - {MAIN_RELEASE_SCOPE} <= modules
    assert e2e_scope("tests/e2e/test_e2e_batch.py::test_x") == "test_e2e_batch"
    assert e2e_scope("tests/e2e/test_e2e_traffic.py::test_readyz") == MAIN_RELEASE_SCOPE
    queue = LongestFirst((scope, {}) for scope in reversed(SCOPES_LONGEST_FIRST))
    assert [queue.popitem(last=False)[0] for _ in SCOPES_LONGEST_FIRST] == list(SCOPES_LONGEST_FIRST)
