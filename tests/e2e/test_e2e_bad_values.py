"""Values that Kubernetes would refuse are refused by `helm install` itself, naming the key, before any object
exists: never a half-installed release. (Before the schema and template checks, a bad pod label got the Services,
ConfigMaps and HPA created and then the Deployment refused by the API server.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.kube_support import (
    REQUIRED_ENV,
    delete_namespace,
    env_flag,
    helm4_binary,
    helm_binary,
    own_namespace,
    own_release,
    restricted_namespace,
    run_tool,
)

pytestmark = pytest.mark.e2e

NAMESPACE = own_namespace("bad-values")
RELEASE = own_release("refused")
BAD_VALUES = [
    (["--set", "resources.requests.memory=1Gi", "--set", "resources.limits.memory=512Mi"], "resources.requests.memory"),
    (["--set-json", 'extraEnv=[{"name":"A","value":"1"},{"name":"A","value":"2"}]'], "extraEnv"),
    (["--set-json", 'volumes=[{"name":"data","emptyDir":{}},{"name":"data","emptyDir":{}}]'], "volumes"),
    (["--set", "podLabels.team=not valid!"], "podLabels"),
]


@pytest.fixture(scope="module")
def helms() -> list[str]:
    found = [helm_binary(), helm4_binary()]
    if None in found:
        reason = f"helm 3 and helm 4 are both needed, found {found} (make setup-e2e installs them)"
        if env_flag(REQUIRED_ENV):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return [str(path) for path in found]


@pytest.fixture(scope="module")
def namespace(core: Any) -> Iterator[str]:
    delete_namespace(core, NAMESPACE)
    restricted_namespace(core, NAMESPACE)
    yield NAMESPACE
    delete_namespace(core, NAMESPACE)


@pytest.mark.parametrize(("values", "key"), BAD_VALUES, ids=[key for _, key in BAD_VALUES])
@pytest.mark.timeout(120)
def test_bad_values_leave_nothing_behind(
    helms: list[str], namespace: str, core: Any, values: list[str], key: str
) -> None:
    for helm in helms:
        result = run_tool([helm, "install", RELEASE, "charts/flask-svc", "--namespace", namespace, *values])
        assert result.returncode != 0, f"{helm} installed it:\n{result.stdout}"
        assert key in result.stderr, f"{helm}'s refusal does not name {key}:\n{result.stderr}"
        status = run_tool([helm, "status", RELEASE, "--namespace", namespace])
        assert status.returncode != 0, f"{helm} recorded a release:\n{status.stdout}"
        left = {
            "configmaps": [m.metadata.name for m in core.list_namespaced_config_map(namespace).items],
            "services": [s.metadata.name for s in core.list_namespaced_service(namespace).items],
            "secrets": [s.metadata.name for s in core.list_namespaced_secret(namespace).items],
        }
        left["configmaps"].remove("kube-root-ca.crt")
        assert not any(left.values()), f"{helm} left objects behind: {left}"
