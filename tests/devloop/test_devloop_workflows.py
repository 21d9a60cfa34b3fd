"""The GitHub workflows and dependabot: schema-valid, timeouts everywhere, every action pinned to a verified
commit, least privilege, checkov-clean, and wired to the same versions and files as the dev loop."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.devloop.conftest import CHART_SCHEMA, KIND_SCHEMA, ROOT, SKAFFOLD_SCHEMA, load_yaml

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = ROOT / ".venv" / "bin"
CHECKOV = ROOT / ".tools" / "checkov-venv" / "bin" / "checkov"
USES_LINE = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<tag>\S+))?\s*$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")

# Every action the workflows use, at the commit its release tag points to. Each pair was checked against
# several independent public pins of the same tag; re-check a new one with
#   git ls-remote https://github.com/<action> refs/tags/<tag>   (the peeled ^{} line for annotated tags)
# before changing it here (a dependabot bump changes both the workflow and this table).
VERIFIED_PINS = {
    "actions/checkout": ("de0fac2e4500dabe0009e67214ff5f5447ce83dd", "v6.0.2"),
    "actions/setup-python": ("a309ff8b426b58ec0e2a45f0f869d46889d02405", "v6.2.0"),
    "azure/setup-helm": ("dda3372f752e03dde6b3237bc9431cdc2f7a02a2", "v5.0.0"),
    "helm/kind-action": ("ef37e7f390d99f746eb8b610417061a60e82a6cc", "v1.14.0"),
    "helm/chart-testing-action": ("6ec842c01de15ebb84c8627d2744a0c2f2755c9f", "v2.8.0"),
    "docker/setup-qemu-action": ("ce360397dd3f832beb865e1373c09c0e9f86d70a", "v4.0.0"),
    "docker/setup-buildx-action": ("4d04d5d9486b7bd6fa91e7baf45bbb4f8b9deedd", "v4.0.0"),
    "docker/login-action": ("4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0"),
    "docker/metadata-action": ("030e881283bb7a6894de51c315a6bfe6a94e05cf", "v6.0.0"),
    "docker/build-push-action": ("bcafcacb16a39f128d818304e6c9c0c18556b85f", "v7.1.0"),
    "sigstore/cosign-installer": ("6f9f17788090df1f26f669e9d70d6ae9567deba6", "v4.1.2"),
    # docs.yaml: checked against the tag in the upstream repository (its v5 branch tag points to the same commit).
    "actions/upload-pages-artifact": ("fc324d3547104276b827a68afc52ff2a11cc49c9", "v5.0.0"),
    "actions/deploy-pages": ("cd2ce8fcbc39b97be8ca5fce6e763baed58fa128", "v5.0.0"),
}


def workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / ".github" / "workflows" / name)
    return data


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    found: dict[str, Any] = doc["on"] if "on" in doc else doc[True]
    return found


def run_text(doc: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in steps(doc))


def devloop_var(name: str) -> str:
    match = re.search(rf"^{name}\s*:?=\s*(\S+)", (ROOT / "mk" / "devloop.mk").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_the_four_workflows_exist() -> None:
    assert [w.name for w in WORKFLOWS] == ["ci.yaml", "docs.yaml", "e2e.yaml", "release.yaml"]


@pytest.mark.parametrize("schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"])
def test_workflows_pass_check_jsonschema(schema: str) -> None:
    out = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", schema, *WORKFLOWS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dependabot_passes_its_schema_and_covers_pip_actions_docker() -> None:
    path = ROOT / ".github" / "dependabot.yml"
    out = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    ecosystems = {u["package-ecosystem"] for u in load_yaml(path)["updates"]}
    assert ecosystems == {"pip", "github-actions", "docker"}


def test_every_uses_is_pinned_to_a_verified_commit_with_its_tag() -> None:
    seen = set()
    problems = []
    for path in WORKFLOWS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "uses:" not in line:
                continue
            where = f"{path.name}:{number}"
            match = USES_LINE.match(line)
            pinned = match and PINNED.match(match.group("ref"))
            if not match or not pinned:
                problems.append(f"{where}: not pinned to a 40-hex commit: {line.strip()}")
                continue
            action = pinned.group("action")
            seen.add(action)
            if VERIFIED_PINS.get(action) != (pinned.group("sha"), match.group("tag")):
                problems.append(f"{where}: {action}@{pinned.group('sha')} # {match.group('tag')} is not a verified pin")
    assert not problems, "\n".join(problems)
    assert seen == set(VERIFIED_PINS), f"unused verified pins: {set(VERIFIED_PINS) - seen}"


def test_every_job_has_a_timeout_and_least_privilege() -> None:
    for path in WORKFLOWS:
        doc = load_yaml(path)
        assert doc["permissions"] == {"contents": "read"}, f"{path.name}: top-level permissions must be read-only"
        assert "pull_request_target" not in triggers(doc), path.name
        for name, job in doc["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name} has no timeout-minutes"
            granted = {k for k, v in job.get("permissions", {}).items() if v == "write"}
            if path.name == "release.yaml":
                assert granted <= {"packages", "id-token"}, granted
            elif path.name == "docs.yaml" and name == "deploy":
                assert granted <= {"pages", "id-token"}, granted
            else:
                assert not granted, f"{path.name}:{name} asks for write access: {granted}"
        for step in steps(doc):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, (
                    f"{path.name}: checkout keeps the token"
                )


def test_checkov_passes_on_the_workflows(tmp_path: Path) -> None:
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed (make setup installs it into .tools/checkov-venv)")
    # Run from elsewhere: the repository's .checkov.yaml configures the chart's (kubernetes) scan.
    out = subprocess.run(
        [CHECKOV, "--framework", "github_actions", "-d", ROOT / ".github", "--quiet", "--compact", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Passed checks:" in out.stdout and "Failed checks: 0" in out.stdout, out.stdout


def test_ci_runs_the_readme_command_with_the_schemas_the_tests_need() -> None:
    doc = workflow("ci.yaml")
    text = run_text(doc)
    assert re.search(r"^make test$", text, re.M)
    for name in (SKAFFOLD_SCHEMA, KIND_SCHEMA, CHART_SCHEMA):
        assert name in text, f"ci.yaml does not fetch {name}"
    assert "FLASK_SVC_SCHEMA_DIR=" in text
    # The schema comes from the skaffold release the dev loop pins (test_devloop_upstream checks that it has it).
    assert f"GoogleContainerTools/skaffold/{devloop_var('DEVLOOP_SKAFFOLD_VERSION')}/docs-v2/" in text
    assert {"test", "chart", "image"} <= set(doc["jobs"])
    assert "helm lint --strict" in text and "kubernetes-validate" in text


def test_e2e_runs_on_kind_and_may_not_skip() -> None:
    doc = workflow("e2e.yaml")
    assert doc["env"]["FLASK_SVC_E2E_REQUIRED"] == "true"
    kind = next(s for s in steps(doc) if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["config"] == "k8s/kind-config.yaml"
    assert kind["with"]["version"] == devloop_var("DEVLOOP_KIND_VERSION")
    assert f"(this one: kind {kind['with']['version']})" in (ROOT / "k8s" / "kind-config.yaml").read_text()
    text = run_text(doc)
    for needle in (
        "kind load docker-image",
        "make metrics-server",
        "skaffold deploy --profile ci",
        "skaffold verify --profile ci",
        "pytest -m e2e tests/e2e",
        "helm test",
        "ct lint",
        "ct install",
        f"skaffold/releases/{devloop_var('DEVLOOP_SKAFFOLD_VERSION')}/",
    ):
        assert needle in text, f"e2e.yaml does not run {needle!r}"
    helm = next(s for s in steps(doc) if s.get("uses", "").startswith("azure/setup-helm@"))
    assert helm["with"]["version"] == devloop_var("DEVLOOP_HELM_VERSION")


def test_docs_publishes_the_strict_build_of_the_pinned_lock() -> None:
    doc = workflow("docs.yaml")
    assert re.search(r"^make docs-build DOCS_SITE=_site$", run_text(doc), re.M)
    upload = next(s for s in steps(doc) if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_site"
    assert doc["jobs"]["deploy"]["needs"] == "build"
    assert "pull_request" not in triggers(doc), "only main is published"
    assert "--strict" in (ROOT / "mk" / "docs.mk").read_text()


def test_release_signs_a_multi_arch_image_and_an_oci_chart() -> None:
    doc = workflow("release.yaml")
    build = next(s for s in steps(doc) if s.get("uses", "").startswith("docker/build-push-action@"))
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"].startswith("mode=")
    text = run_text(doc)
    assert text.count("cosign sign --yes") == 2 and text.count("cosign verify") == 2
    assert "helm package charts/flask-svc" in text and 'helm push "dist/' in text and "oci://" in text
    for job in doc["jobs"].values():
        assert job["permissions"].get("id-token") == "write"  # keyless signing
    assert list(triggers(doc)) == ["push"]
    assert triggers(doc)["push"] == {"tags": ["v*.*.*"]}
