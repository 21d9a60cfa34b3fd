"""yamllint over every YAML file in the repository, with the repository's .yamllint."""

from __future__ import annotations

import subprocess

from tests.devloop.conftest import ROOT


def test_yamllint_passes_on_all_yaml() -> None:
    out = subprocess.run(
        [ROOT / ".venv" / "bin" / "yamllint", "--strict", "--format", "parsable", "."],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_yamllint_sees_our_files_and_skips_helm_templates() -> None:
    out = subprocess.run(
        [ROOT / ".venv" / "bin" / "yamllint", "--list-files", "."],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    listed = {line.removeprefix("./") for line in out.stdout.splitlines()}
    for path in ("skaffold.yaml", "k8s/kind-config.yaml", ".github/workflows/e2e.yaml", ".github/dependabot.yml"):
        assert path in listed
    assert not [p for p in listed if "/templates/" in p or p.startswith((".venv/", ".tools/"))]
