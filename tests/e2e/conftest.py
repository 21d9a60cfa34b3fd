"""Fixtures for the e2e suite: the cluster from the current kubeconfig, and the flask-svc release in it.

Without a reachable cluster every e2e test is skipped with one reason, unless FLASK_SVC_E2E_REQUIRED=true
(set by .github/workflows/e2e.yaml), which turns that into a failure: the workflow must never pass by skipping.
"""

from __future__ import annotations

import subprocess
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kube_support import (
    REQUIRED_ENV,
    Settings,
    connect_cluster,
    env_flag,
    pod_is_ready,
    run_tool,
    selector_string,
    wait_for_rollout,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


# `make e2e` runs the suite on a few pytest-xdist workers with --dist loadscope (tests/e2e/run.sh), a scope being
# what may run beside the rest: each module that installs a release of its own in a namespace of its own; every
# other test shares the suite's main release (a rolling restart, the HPA scaling it, a saturated pod must not
# overlap), so they make one scope, run one after another on one worker. The scopes start longest first (as last
# measured, docs/cluster.md), so that no long one is left to start last.
MAIN_RELEASE_SCOPE = "main-release"
SCOPES_LONGEST_FIRST = (
    MAIN_RELEASE_SCOPE,
    "test_e2e_batch",
    "test_e2e_batch_bounds",
    "test_e2e_model",
    "test_e2e_release_lifecycle",
    "test_e2e_batch_access",
    "test_e2e_bad_values",
)


def e2e_scope(nodeid: str) -> str:
    module = Path(nodeid.split("::", 1)[0]).stem
    return module if module in SCOPES_LONGEST_FIRST else MAIN_RELEASE_SCOPE


class LongestFirst(OrderedDict[str, Any]):
    """xdist's queue of scopes not yet started: it takes them with popitem(last=False); they come out in the order
    of SCOPES_LONGEST_FIRST instead of the order they were collected in."""

    def popitem(self, last: bool = True) -> tuple[str, Any]:
        scope = min(self, key=SCOPES_LONGEST_FIRST.index)
        return scope, self.pop(scope)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ReleaseScopes(LoadScopeScheduling):  # type: ignore[misc]
        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            self.workqueue = LongestFirst()

        def _split_scope(self, nodeid: str) -> str:
            return e2e_scope(nodeid)

    return ReleaseScopes(config, log)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def kube_api() -> Iterator[Any]:
    api, detail = connect_cluster()
    if api is None:
        reason = (
            f"no Kubernetes cluster reachable: {detail}. The e2e suite runs on kind in "
            f".github/workflows/e2e.yaml; {REQUIRED_ENV}=true turns this skip into a failure."
        )
        if env_flag(REQUIRED_ENV):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    yield api
    api.close()


@pytest.fixture(scope="module", autouse=True)
def _cluster(kube_api: Any) -> Any:
    """Every e2e module needs the cluster: one skip (or failure) reason for all of them."""
    return kube_api


@pytest.fixture(scope="session")
def core(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube_api)


@pytest.fixture(scope="session")
def apps(kube_api: Any) -> Any:
    from kubernetes import client

    return client.AppsV1Api(kube_api)


@pytest.fixture(scope="session")
def batch(kube_api: Any) -> Any:
    from kubernetes import client

    return client.BatchV1Api(kube_api)


@pytest.fixture(scope="session")
def autoscaling(kube_api: Any) -> Any:
    from kubernetes import client

    return client.AutoscalingV2Api(kube_api)


@pytest.fixture(scope="session")
def custom(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(kube_api)


@pytest.fixture(scope="session")
def release_selector(settings: Settings) -> str:
    return f"app.kubernetes.io/instance={settings.release}"


@pytest.fixture(scope="session")
def deployment_name(apps: Any, settings: Settings, release_selector: str) -> str:
    found = apps.list_namespaced_deployment(settings.namespace, label_selector=release_selector).items
    names = [d.metadata.name for d in found]
    assert len(names) == 1, f"expected one Deployment with {release_selector} in {settings.namespace}, got {names}"
    return str(names[0])


@pytest.fixture
def deployment(apps: Any, settings: Settings, deployment_name: str) -> Any:
    """The Deployment once its rollout is complete (re-read for every test: other tests change it)."""
    wait_for_rollout(apps, settings.namespace, deployment_name, settings.rollout_timeout)
    return apps.read_namespaced_deployment(deployment_name, settings.namespace)


@pytest.fixture
def pods(core: Any, settings: Settings, deployment: Any) -> list[Any]:
    selector = selector_string(deployment.spec.selector.match_labels)
    items = core.list_namespaced_pod(settings.namespace, label_selector=selector).items
    return [p for p in items if p.metadata.deletion_timestamp is None]


@pytest.fixture
def ready_pod(pods: list[Any]) -> Any:
    ready = [p for p in pods if pod_is_ready(p)]
    assert ready, "no Ready pod of the release"
    return ready[0]


@pytest.fixture
def app_container(deployment: Any) -> Any:
    containers = deployment.spec.template.spec.containers
    by_name = {c.name: c for c in containers}
    # The app container is the one serving the app port; the chart may add sidecars.
    for c in containers:
        if any(p.container_port == 8080 for p in c.ports or []):
            return c
    raise AssertionError(f"no container exposes port 8080 in {sorted(by_name)}")


@pytest.fixture(scope="session")
def upstream_crds(kube_api: Any) -> list[str]:
    """The upstream CRDs of ServiceMonitor, PrometheusRule (prometheus-operator) and ScaledObject (KEDA), applied to
    the cluster; the files come from the operators' Go modules, pinned by cluster/modules/crds/go.sum."""
    listed = subprocess.run(
        [str(REPO_ROOT / "cluster" / "build.sh"), "crds"], capture_output=True, text=True, timeout=300, check=False
    )
    assert listed.returncode == 0, f"cluster/build.sh crds failed (it needs Go):\n{listed.stderr}"
    files = listed.stdout.split()
    argv = ["kubectl", "apply", "--server-side", "--force-conflicts"]
    for path in files:
        argv += ["-f", path]
    applied = run_tool(argv)
    assert applied.returncode == 0, f"applying the upstream CRDs failed:\n{applied.stderr}"
    waited = run_tool(["kubectl", "wait", "--for=condition=Established", "--timeout=60s", *[f"-f={p}" for p in files]])
    assert waited.returncode == 0, waited.stderr
    return files
