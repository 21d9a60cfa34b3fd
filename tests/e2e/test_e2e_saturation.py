"""A pod whose every request thread is busy for 90 s is busy, not dead: the kubelet's liveness probe keeps passing
(restartCount stays 0, no failed liveness probe), and the pod serves ordinary requests again afterwards.

Slow requests (`/delay`, a debug endpoint the e2e values turn on) go to one pod through the API server's
port-forward, twice as many at a time as the pod has threads, renewed as they finish.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.kube_support import (
    APP_PORT,
    Settings,
    pod_is_ready,
    pod_port_relay,
    selector_string,
    wait_until,
)

pytestmark = pytest.mark.e2e

SATURATION_SECONDS = 90.0
DELAY_SECONDS = 10


@pytest.mark.timeout(300)
def test_saturated_pod_is_not_restarted_and_serves_after(
    core: Any, apps: Any, autoscaling: Any, settings: Settings, deployment: Any
) -> None:
    ns = settings.namespace
    # A scale-in still under way (after the autoscaling test) would delete the busy pod first: it is the one that
    # reads as not ready while saturated. Start once the replica count has settled.
    wait_until(lambda: _settled(apps, autoscaling, ns, deployment.metadata.name), timeout=420, what="a settled HPA")
    selector = selector_string(deployment.spec.selector.match_labels)
    pods = [p for p in core.list_namespaced_pod(ns, label_selector=selector).items if pod_is_ready(p)]
    assert pods, "no Ready pod of the release"
    ready_pod = pods[0]
    name = ready_pod.metadata.name
    config = core.read_namespaced_config_map(ready_pod.spec.containers[0].env_from[0].config_map_ref.name, ns)
    threads = int(config.data.get("GUNICORN_THREADS", "4")) * int(config.data.get("WEB_CONCURRENCY", "1"))
    restarts_before = ready_pod.status.container_statuses[0].restart_count
    stop = threading.Event()
    outcomes: list[int | str] = []

    def keep_one_thread_busy(relay_url: str) -> None:
        while not stop.is_set():
            try:
                answer = requests.get(f"{relay_url}/delay/{DELAY_SECONDS}", timeout=DELAY_SECONDS * 6)
                outcomes.append(answer.status_code)
            except requests.RequestException as exc:
                outcomes.append(type(exc).__name__)

    with pod_port_relay(ns, name, APP_PORT) as relay:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=2 * threads) as pool:
            for _ in range(2 * threads):
                pool.submit(keep_one_thread_busy, relay.url)
            time.sleep(SATURATION_SECONDS)
            stop.set()
        saturated_for = time.monotonic() - started
        after = requests.get(f"{relay.url}/readyz", timeout=10)

    pod = core.read_namespaced_pod(name, ns)
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name},reason=Unhealthy").items
    liveness_failures = [e.message for e in events if "Liveness" in (e.message or "")]
    print(f"saturation: {2 * threads} slow requests for {threads} threads, {saturated_for:.0f} s, {len(outcomes)} done")
    assert saturated_for >= SATURATION_SECONDS
    assert len(outcomes) >= 2 * threads, f"the slow requests did not run: {outcomes}"
    assert pod.status.container_statuses[0].restart_count == restarts_before, "the kubelet restarted the busy pod"
    assert not liveness_failures, f"liveness probe failed while busy: {liveness_failures}"
    assert after.status_code == 200, f"/readyz after the load: {after.status_code}"
    # Readiness may have dropped while every thread was busy (it goes through Flask); the next probes restore it.
    wait_until(
        lambda: (pod_is_ready(core.read_namespaced_pod(name, ns)), "not Ready"),
        timeout=60,
        what="the pod to be Ready again",
    )


def _settled(apps: Any, autoscaling: Any, ns: str, name: str) -> tuple[bool, str]:
    scale = apps.read_namespaced_deployment(name, ns)
    hpas = [
        h
        for h in autoscaling.list_namespaced_horizontal_pod_autoscaler(ns).items
        if h.spec.scale_target_ref.name == name
    ]
    floor = hpas[0].spec.min_replicas if hpas else scale.spec.replicas
    ready = scale.status.ready_replicas or 0
    done = scale.spec.replicas == floor and ready == floor and (scale.status.replicas or 0) == floor
    return done, f"replicas spec={scale.spec.replicas} ready={ready} total={scale.status.replicas} floor={floor}"
