"""The HPA: its targets, and with metrics-server, scale-out under /burn load and scale-in after it.

Scale-in waits out the HPA's scale-down stabilisation window: k8s/values-e2e.yaml shortens it to 30 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kube_support import (
    APP_PORT,
    Settings,
    delete_job,
    hpa_cpu_target,
    load_job_manifest,
    pick_service,
    selector_string,
    start_load_job,
    wait_for_service_endpoints,
    wait_until,
)

pytestmark = pytest.mark.e2e

JOB = "flask-svc-e2e-burn-load"


@pytest.fixture
def hpa(autoscaling: Any, settings: Settings, release_selector: str) -> Any:
    found = autoscaling.list_namespaced_horizontal_pod_autoscaler(
        settings.namespace, label_selector=release_selector
    ).items
    assert len(found) == 1, f"expected one HPA with {release_selector}, got {[h.metadata.name for h in found]}"
    return found[0]


def test_hpa_targets_the_deployment(hpa: Any, deployment: Any) -> None:
    ref = hpa.spec.scale_target_ref
    assert (ref.kind, ref.name) == ("Deployment", deployment.metadata.name)
    assert 1 <= (hpa.spec.min_replicas or 1) < hpa.spec.max_replicas
    target = hpa_cpu_target(hpa)
    assert target is not None and 0 < target <= 100, f"no CPU utilisation target in {hpa.spec.metrics}"
    for c in deployment.spec.template.spec.containers:
        requests = (c.resources and c.resources.requests) or {}
        assert "cpu" in requests, f"container {c.name} has no CPU request: the HPA cannot compute utilisation"


def _pod_metrics_available(custom: Any, ns: str, selector: str) -> tuple[bool, str]:
    try:
        found = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods", label_selector=selector)
    except Exception as exc:
        return False, f"metrics API not answering: {type(exc).__name__}"
    items = found.get("items", [])
    return bool(items), f"{len(items)} pods with metrics"


def _replicas(autoscaling: Any, ns: str, name: str) -> tuple[int, int]:
    status = autoscaling.read_namespaced_horizontal_pod_autoscaler(name, ns).status
    return status.current_replicas or 0, status.desired_replicas or 0


@pytest.mark.timeout(1500)
def test_hpa_scales_out_under_burn_load_and_back_in(
    autoscaling: Any,
    batch: Any,
    core: Any,
    custom: Any,
    settings: Settings,
    deployment: Any,
    app_container: Any,
    hpa: Any,
    release_selector: str,
) -> None:
    ns, hpa_name = settings.namespace, hpa.metadata.name
    low = hpa.spec.min_replicas or 1
    selector = selector_string(deployment.spec.selector.match_labels)
    wait_until(
        lambda: _pod_metrics_available(custom, ns, selector),
        timeout=300,
        interval=5,
        what="metrics-server to report pod metrics",
    )
    service = pick_service(core.list_namespaced_service(ns, label_selector=release_selector).items, APP_PORT)
    wait_for_service_endpoints(core, ns, service)
    manifest = load_job_manifest(
        name=JOB,
        namespace=ns,
        image=app_container.image,
        url=f"http://{service}.{ns}.svc:{APP_PORT}/burn?ms=200",
        seconds=settings.scale_timeout,
        concurrency=8,
    )
    start_load_job(batch, manifest)
    try:

        def scaled_out() -> tuple[bool, str]:
            current, desired = _replicas(autoscaling, ns, hpa_name)
            return max(current, desired) > low, f"current={current} desired={desired} min={low}"

        wait_until(scaled_out, timeout=settings.scale_timeout, interval=5, what="the HPA to scale out")
    finally:
        delete_job(batch, ns, JOB)

    def scaled_in() -> tuple[bool, str]:
        current, desired = _replicas(autoscaling, ns, hpa_name)
        return current == desired == low, f"current={current} desired={desired} min={low}"

    wait_until(scaled_in, timeout=settings.scale_timeout, interval=5, what="the HPA to scale back in")
