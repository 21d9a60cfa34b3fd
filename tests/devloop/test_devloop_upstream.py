"""Every version the dev loop, the workflows and the manual (docs/cluster.md) pin is one upstream publishes.

tests/devloop/upstream_releases.yaml records what upstream published when it was last read (tags of the upstream
repositories; see its header). The tests cannot reach the internet, so they check the pins against that record:
a pin of a release that does not exist (skaffold v2.17.0 for a v4beta14 config, jaeger 4.4.8, collector 0.158.3)
fails here instead of at `make dev`."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.devloop.conftest import ROOT, load_yaml
from tests.devloop.test_devloop_config import with_profiles

CHARTS = ("kube-prometheus-stack", "jaeger", "opentelemetry-collector", "metrics-server")
TOOLS = ("skaffold", "kind", "helm", "kubectl", "keda", "gateway-api")
UPSTREAM = ROOT / "tests" / "devloop" / "upstream_releases.yaml"
WORKFLOWS = ROOT / ".github" / "workflows"


class Pin(NamedTuple):
    component: str
    version: str
    where: str


def _release_versions(skaffold: dict[str, Any]) -> list[Pin]:
    """The remote charts of skaffold.yaml, with each profile applied (the observability profile adds them)."""
    pins = set()
    for profile in [None, *(p["name"] for p in skaffold.get("profiles", []))]:
        config = with_profiles(skaffold, *([profile] if profile else []))
        for release in config["deploy"]["helm"]["releases"]:
            if "remoteChart" in release:
                pins.add(
                    Pin(release["remoteChart"], str(release["version"]), f"skaffold.yaml release {release['name']}")
                )
    return sorted(pins)


def _make_var(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}\s*:?=\s*(\S+)", text, re.M)
    return match.group(1) if match else None


# (file, component, regular expression whose first group is the version)
TEXT_PINS: list[tuple[str, str, str]] = [
    ("mk/devloop.mk", "kind", r"^DEVLOOP_KIND_VERSION\s*:=\s*(\S+)"),
    ("mk/devloop.mk", "skaffold", r"^DEVLOOP_SKAFFOLD_VERSION\s*:=\s*(\S+)"),
    ("mk/devloop.mk", "helm", r"^DEVLOOP_HELM_VERSION\s*:=\s*(\S+)"),
    ("mk/devloop.mk", "metrics-server", r"^METRICS_SERVER_CHART_VERSION\s*:=\s*(\S+)"),
    ("mk/chart.mk", "helm", r"^HELM_VERSION\s*:=\s*(\S+)"),
    (".github/workflows/ci.yaml", "skaffold", r"GoogleContainerTools/skaffold/(v[\d.]+)/"),
    (".github/workflows/ci.yaml", "helm", r"setup-helm@\S+.*\n\s+with:\n\s+version:\s*(\S+)"),
    (".github/workflows/e2e.yaml", "skaffold", r"skaffold/releases/(v[\d.]+)/"),
    (".github/workflows/e2e.yaml", "helm", r"setup-helm@\S+.*\n\s+with:\n\s+version:\s*(\S+)"),
    (".github/workflows/e2e.yaml", "kind", r"kind-action@\S+.*\n\s+with:\n\s+version:\s*(\S+)"),
    (".github/workflows/e2e.yaml", "kubectl", r"kubectl_version:\s*(\S+)"),
    (".github/workflows/e2e.yaml", "gateway-api", r"gateway-api/releases/download/(v[\d.]+)/"),
    (".github/workflows/e2e.yaml", "keda", r"kedacore\.github\.io/charts --version (\S+)"),
    (".github/workflows/release.yaml", "helm", r"setup-helm@\S+.*\n\s+with:\n\s+version:\s*(\S+)"),
    # The live-cluster page's tool table and dev-stack table say the same versions.
    ("docs/cluster.md", "skaffold", r"^\| skaffold \| (v[\d.]+) "),
    ("docs/cluster.md", "kind", r"^\| kind \| (v[\d.]+) "),
    ("docs/cluster.md", "kube-prometheus-stack", r"prometheus-community/kube-prometheus-stack ([\d.]+) "),
    ("docs/cluster.md", "jaeger", r"jaegertracing/jaeger ([\d.]+) "),
    ("docs/cluster.md", "opentelemetry-collector", r"open-telemetry/opentelemetry-collector ([\d.]+) "),
    ("docs/cluster.md", "metrics-server", r"metrics-server \(pinned chart ([\d.]+),"),
]


def text_pins(root: Path = ROOT) -> list[Pin]:
    pins = []
    for name, component, pattern in TEXT_PINS:
        found = re.findall(pattern, (root / name).read_text(encoding="utf-8"), re.M)
        # A pattern that finds nothing means the file changed shape: the check must not pass by finding nothing.
        assert found, f"{name}: no {component} version found by {pattern!r}; update TEXT_PINS"
        pins += [Pin(component, version, name) for version in found]
    return pins


def all_pins(skaffold: dict[str, Any]) -> list[Pin]:
    return _release_versions(skaffold) + text_pins()


def unpublished(pins: list[Pin], upstream: dict[str, Any]) -> list[str]:
    problems = []
    for pin in pins:
        record = upstream.get(pin.component)
        if record is None:
            problems.append(f"{pin.where}: {pin.component} has no entry in {UPSTREAM.name}")
        elif pin.version not in record["releases"]:
            problems.append(f"{pin.where}: {pin.component} {pin.version} is not a published release")
    return problems


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("v").split("."))


@pytest.fixture(scope="module")
def upstream() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(UPSTREAM)
    return data


@pytest.fixture(scope="module")
def skaffold() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / "skaffold.yaml")
    return data


def test_the_record_says_where_and_when_it_was_read(upstream: dict[str, Any]) -> None:
    for component, record in upstream.items():
        assert record["source"].strip() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["read"]), component
        assert record["releases"] and len(set(record["releases"])) == len(record["releases"]), component


def test_every_pin_is_a_published_release(skaffold: dict[str, Any], upstream: dict[str, Any]) -> None:
    pins = all_pins(skaffold)
    # Every chart of the observability profile and every tool of the dev loop is among them.
    assert {"kube-prometheus-stack", "jaeger", "opentelemetry-collector", "metrics-server"} <= {
        p.component for p in pins
    }
    assert {"skaffold", "kind", "helm", "kubectl", "keda", "gateway-api"} <= {p.component for p in pins}
    problems = unpublished(pins, upstream)
    assert not problems, "\n".join(problems)


def test_one_version_per_tool_across_files(skaffold: dict[str, Any]) -> None:
    """The dev loop, the workflows and the manual name the same skaffold, kind and chart versions."""
    pins = all_pins(skaffold)
    for component in (
        "skaffold",
        "kind",
        "kube-prometheus-stack",
        "jaeger",
        "opentelemetry-collector",
        "metrics-server",
    ):
        versions = {p.version for p in pins if p.component == component}
        assert len(versions) == 1, (
            f"{component}: {sorted((p.version, p.where) for p in pins if p.component == component)}"
        )


def test_skaffold_pin_reads_the_config_version(skaffold: dict[str, Any], upstream: dict[str, Any]) -> None:
    first = upstream["skaffold"]["configVersions"][skaffold["apiVersion"]]
    for pin in (p for p in all_pins(skaffold) if p.component == "skaffold"):
        assert _semver(pin.version) >= _semver(first), (
            f"{pin.where}: skaffold {pin.version} cannot read {skaffold['apiVersion']} (first in {first})"
        )


def test_kind_node_image_was_built_for_the_pinned_kind(upstream: dict[str, Any]) -> None:
    kind = _make_var((ROOT / "mk" / "devloop.mk").read_text(), "DEVLOOP_KIND_VERSION")
    images = [n["image"] for n in load_yaml(ROOT / "k8s" / "kind-config.yaml")["nodes"]]
    built = upstream["kind"]["nodeImages"][kind]
    assert images and all(image in built for image in images), f"{images} are not among kind {kind}'s images"
    kubectl = {p.version for p in text_pins() if p.component == "kubectl"}
    node_versions = {image.split(":")[1].split("@")[0] for image in images}
    assert kubectl == node_versions, "kubectl in e2e.yaml should match the node's Kubernetes"


@pytest.mark.parametrize(
    ("component", "bad"),
    [("jaeger", "4.4.8"), ("opentelemetry-collector", "0.158.3"), ("kube-prometheus-stack", "82.99.0")],
)
def test_the_check_catches_a_chart_that_does_not_exist(
    skaffold: dict[str, Any], upstream: dict[str, Any], component: str, bad: str
) -> None:
    """The pins that once shipped (4.4.8, 0.158.3) do not pass: the check is not a restatement of the pins."""
    broken = copy.deepcopy(skaffold)
    for profile in broken["profiles"]:
        for patch in profile["patches"]:
            value = patch.get("value")
            if isinstance(value, dict) and value.get("remoteChart") == component:
                value["version"] = bad
    problems = unpublished(_release_versions(broken), upstream)
    assert len(problems) == 1 and problems[0].endswith(f": {component} {bad} is not a published release"), problems


def test_the_check_catches_a_skaffold_too_old_for_the_config(upstream: dict[str, Any]) -> None:
    """v2.17.0 exists, but cannot read v4beta14: being published is not enough for skaffold."""
    first = upstream["skaffold"]["configVersions"]["skaffold/v4beta14"]
    assert "v2.17.0" in upstream["skaffold"]["releases"] and _semver("v2.17.0") < _semver(first)
