"""Shared fixtures for the chart tests: the real tools (installed by `make setup-chart`) and one render per
scenario and Kubernetes version per session, so helm, kubernetes-validate and checkov each run as few times as
possible."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv_utils

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "flask-svc"
TOOLS_BIN = REPO / ".tools" / "bin"
RELEASE = "flask-svc"
NAMESPACE = "flask-svc"
# Rendered as if the Prometheus Operator were installed, so ServiceMonitor and PrometheusRule are in the output.
MONITORING_API = "monitoring.coreos.com/v1"

SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))


def _oldest_supported() -> str:
    """The lower bound of Chart.yaml's kubeVersion (">=1.29.0-0" → "1.29.0")."""
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*v?(\d+\.\d+\.\d+)(-0)?", constraint.strip())
    assert match, f"kubeVersion {constraint!r} is not a plain lower bound"
    return match.group(1)


KUBE_OLDEST = _oldest_supported()
KUBE_NEWEST = kv_utils.latest_version()  # the newest Kubernetes whose schemas kubernetes-validate bundles
KUBE_VERSIONS = (KUBE_OLDEST, KUBE_NEWEST)


def find_tool(name: str, *candidates: Path) -> Path:
    """A tool from .tools (installed by `make setup-chart`) or PATH; skips (a failure under CI=true) when absent."""
    for path in (TOOLS_BIN / name, *candidates):
        if path.is_file():
            return path
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.skip(f"{name} is not installed: run `make setup-chart`")


@pytest.fixture(scope="session")
def helm() -> Path:
    return find_tool("helm")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return find_tool("checkov", REPO / ".tools" / "checkov-venv" / "bin" / "checkov")


@pytest.fixture(scope="session")
def readme_generator() -> Path:
    return find_tool("readme-generator", REPO / ".tools" / "chart-node" / "node_modules" / ".bin" / "readme-generator")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class Helm:
    """`helm template` with the test's defaults; renders are cached, as the same inputs give the same output."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, *args: str) -> Result:
        proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True, timeout=60, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    @functools.cache  # noqa: B019 — one Helm per session; the cache is the point
    def template(
        self,
        *flags: str,
        kube_version: str = KUBE_NEWEST,
        monitoring: bool = True,
        release: str = RELEASE,
    ) -> Result:
        args = ["template", release, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version]
        if monitoring:
            args += ["--api-versions", MONITORING_API]
        return self.run(*args, *flags)

    def render(self, *flags: str, **options: Any) -> list[dict[str, Any]]:
        """Parsed manifests of a render that must succeed, read strictly: a key written twice fails."""
        result = self.template(*flags, **options)
        assert result.returncode == 0, result.stderr
        return strict_load_all(result.stdout)

    def notes(self, tmp_path: Path, *flags: str) -> str:
        """NOTES.txt as `helm install` would print it. `helm template` skips NOTES, so a copy of the chart renders it
        as a ConfigMap instead."""
        copy = tmp_path / "flask-svc"
        shutil.copytree(CHART, copy)
        notes = (copy / "templates" / "NOTES.txt").read_text()
        preview = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        (copy / "templates" / "notes-preview.yaml").write_text(preview + textwrap.indent(notes, "    "))
        result = self.run(
            "template", RELEASE, str(copy), "--namespace", NAMESPACE, "--kube-version", KUBE_NEWEST,
            "--api-versions", MONITORING_API, "--show-only", "templates/notes-preview.yaml", *flags,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        text: str = yaml.safe_load(result.stdout)["data"]["notes"]
        return text

    def scenario(self, name: str, kube_version: str = KUBE_NEWEST) -> list[dict[str, Any]]:
        return self.render("--values", str(values_file(name)), kube_version=kube_version)


class _StrictLoader(yaml.SafeLoader):
    """Refuses a mapping that names a key twice. PyYAML keeps the last one silently; kustomize (Argo CD, Flux
    post-renderers) and the API server's server-side apply refuse the manifest."""


def _no_duplicate_keys(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def strict_load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc]


def values_file(scenario: str) -> Path:
    return CHART / "ci" / f"{scenario}-values.yaml"


@pytest.fixture(scope="session")
def chart(helm: Path) -> Helm:
    return Helm(helm)


@pytest.fixture(scope="session")
def rendered_dir(chart: Helm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every scenario rendered for the oldest and newest Kubernetes, one file each, for the file-based validators."""
    directory = tmp_path_factory.mktemp("rendered")
    for scenario in SCENARIOS:
        for version in KUBE_VERSIONS:
            result = chart.template("--values", str(values_file(scenario)), kube_version=version)
            assert result.returncode == 0, f"{scenario} on {version}: {result.stderr}"
            (directory / f"{scenario}-k{version}.yaml").write_text(result.stdout)
    return directory


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [doc for doc in by_kind(docs, kind) if name is None or doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def iter_leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for every leaf of a values tree; lists and empty maps count as leaves."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from iter_leaves(value, (*path, key))
    else:
        yield path, node
