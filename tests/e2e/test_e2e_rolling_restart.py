"""A rolling restart under continuous in-cluster load loses no request.

The load runs in a Job inside the cluster and goes through the Service, like any in-cluster client, so
what is measured is the whole drain path: readiness going false, endpoint removal, preStop, graceful
shutdown of in-flight requests.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from tests.e2e.kube_support import (
    APP_PORT,
    Settings,
    await_load_job,
    delete_job,
    load_job_manifest,
    pick_service,
    pod_is_ready,
    start_load_job,
    wait_for_rollout,
    wait_for_service_endpoints,
    wait_until,
)

pytestmark = pytest.mark.e2e

JOB = "flask-svc-e2e-restart-load"
TEXT = "rolling restarts must not drop a single request " * 8


@pytest.mark.timeout(900)
def test_rolling_restart_under_load_has_zero_failures(
    apps: Any, batch: Any, core: Any, settings: Settings, deployment: Any, app_container: Any, release_selector: str
) -> None:
    ns, name = settings.namespace, deployment.metadata.name
    service = pick_service(core.list_namespaced_service(ns, label_selector=release_selector).items, APP_PORT)
    wait_for_service_endpoints(core, ns, service)  # a refused first request would count as a failure
    manifest = load_job_manifest(
        name=JOB,
        namespace=ns,
        image=app_container.image,
        url=f"http://{service}.{ns}.svc:{APP_PORT}/api/v1/analyze",
        method="POST",
        body=TEXT,
        seconds=settings.load_seconds,
        concurrency=4,
    )
    start_load_job(batch, manifest)
    try:
        # Let the load reach steady state before the restart begins.
        wait_until(lambda: _load_pod_running(core, ns), timeout=120, what="the load pod to run")
        time.sleep(5)

        restart_began = time.monotonic()
        stamp = dt.datetime.now(dt.UTC).isoformat()
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
        apps.patch_namespaced_deployment(name, ns, patch)
        wait_for_rollout(apps, ns, name, settings.rollout_timeout)
        rollout_seconds = time.monotonic() - restart_began

        result = await_load_job(batch, core, ns, JOB, timeout=settings.load_seconds + 180)
    finally:
        delete_job(batch, ns, JOB)

    # The load must have covered the whole restart for "zero failures" to mean anything.
    assert rollout_seconds + 5 < result.elapsed, (
        f"the rollout took {rollout_seconds:.0f}s but the load only ran {result.elapsed:.0f}s: "
        "raise FLASK_SVC_E2E_LOAD_SECONDS"
    )
    print(f"rolling restart under load: {result.sent} sent, {result.failed} failed, rollout {rollout_seconds:.0f} s")
    assert result.sent >= 3000, f"too little load to judge: {result.to_json()}"
    assert result.failed == 0, f"requests failed during the rolling restart: {result.to_json()}"


def _load_pod_running(core: Any, ns: str) -> tuple[bool, str]:
    pods = core.list_namespaced_pod(ns, label_selector=f"job-name={JOB}").items
    if not pods:
        return False, "no pod yet"
    pod = pods[0]
    return pod.status.phase == "Running" or pod_is_ready(pod), f"phase={pod.status.phase}"
