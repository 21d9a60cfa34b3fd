"""Helpers for the e2e suite: reaching the cluster, port-forwarding to a pod, waiting for rollouts,
running in-cluster load, and reading HPA targets.

The logic here has unit tests in tests/devloop (they need no cluster). The `kubernetes` package is imported
lazily so that the pure parts stay importable anywhere.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.loadgen import LoadResult

# Environment knobs (documented in docs/contributing.md, CI/CD).
REQUIRED_ENV = "FLASK_SVC_E2E_REQUIRED"
NAMESPACE_ENV = "FLASK_SVC_E2E_NAMESPACE"
RELEASE_ENV = "FLASK_SVC_E2E_RELEASE"
CONTEXT_ENV = "FLASK_SVC_E2E_CONTEXT"

LOADGEN_SOURCE = Path(__file__).with_name("loadgen.py").read_text(encoding="utf-8")
APP_PORT = 8080
METRICS_PORT = 9797


DEFAULT_NAMESPACE = "flask-svc"


def own_namespace(suffix: str, environ: Mapping[str, str] = os.environ) -> str:
    """The namespace of a module that installs a release of its own: named after the suite's namespace, so that two
    suites on one cluster (CI's and an engineer's `fs-<name>`) never meet (`flask-svc-batch` for the default)."""
    return f"{environ.get(NAMESPACE_ENV, DEFAULT_NAMESPACE)}-{suffix}"


def own_release(base: str, environ: Mapping[str, str] = os.environ) -> str:
    """A module's own release name: `base` for the suite on its default namespace, else `base` plus the suite's
    namespace (the chart names cluster-scoped objects after the release). "flask-svc" in it becomes "fs": a release
    name containing the chart's name would change the chart's full name, which the tests spell out."""
    namespace = environ.get(NAMESPACE_ENV, DEFAULT_NAMESPACE)
    return base if namespace == DEFAULT_NAMESPACE else f"{base}-{namespace.replace('flask-svc', 'fs')}"


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    namespace: str
    release: str
    rollout_timeout: float
    load_seconds: float
    scale_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            namespace=env.get(NAMESPACE_ENV, DEFAULT_NAMESPACE),
            release=env.get(RELEASE_ENV, "flask-svc"),
            rollout_timeout=float(env.get("FLASK_SVC_E2E_ROLLOUT_TIMEOUT", "300")),
            load_seconds=float(env.get("FLASK_SVC_E2E_LOAD_SECONDS", "60")),
            scale_timeout=float(env.get("FLASK_SVC_E2E_SCALE_TIMEOUT", "420")),
        )


# --- reaching the cluster ---------------------------------------------------------------------------------


def connect_cluster(timeout: float = 5.0) -> tuple[Any | None, str]:
    """Return (ApiClient, server version) for the current kubeconfig context, or (None, why not)."""
    from kubernetes import client, config

    try:
        config.load_kube_config(context=os.environ.get(CONTEXT_ENV) or None)
    except Exception as exc:
        return None, f"no usable kubeconfig ({type(exc).__name__}: {exc})"
    api = client.ApiClient()
    try:
        version = client.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as exc:
        api.close()
        return None, f"the API server did not answer within {timeout:g}s ({type(exc).__name__}: {exc})"
    return api, str(version.git_version)


# --- waiting ----------------------------------------------------------------------------------------------


def wait_until(
    check: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float = 2.0,
    what: str = "condition",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll `check` until it returns (True, message); return that message. On timeout raise TimeoutError
    carrying the last message, so a failing test says what it was waiting for and what it last saw."""
    deadline = clock() + timeout
    while True:
        done, message = check()
        if done:
            return message
        remaining = deadline - clock()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}: {message}")
        sleep(min(interval, remaining))


def wait_for_service_endpoints(core: Any, namespace: str, service: str, timeout: float = 120) -> str:
    """Wait until the Service has a ready endpoint: a rollout's end does not mean the endpoints controller has
    caught up, and an in-cluster client started before that gets "connection refused". Returns the ready
    addresses; on timeout the error names the Service and what its endpoints last held."""

    def ready_endpoint() -> tuple[bool, str]:
        subsets = core.read_namespaced_endpoints(service, namespace).subsets or []
        ready = [a.ip for subset in subsets for a in subset.addresses or []]
        not_ready = [a.ip for subset in subsets for a in subset.not_ready_addresses or []]
        return bool(ready), f"ready addresses {ready}, not ready {not_ready}"

    return wait_until(ready_endpoint, timeout=timeout, what=f"a ready endpoint behind service/{service} in {namespace}")


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    message: str


def rollout_state(deployment: Any) -> RolloutState:
    """The same reading of a Deployment's status that `kubectl rollout status` makes."""
    meta, spec, status = deployment.metadata, deployment.spec, deployment.status
    name = meta.name
    if (status.observed_generation or 0) < (meta.generation or 0):
        return RolloutState(False, False, f"{name}: waiting for the controller to observe generation {meta.generation}")
    for cond in status.conditions or []:
        if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
            return RolloutState(False, True, f"{name}: progress deadline exceeded: {cond.message}")
    want = spec.replicas if spec.replicas is not None else 1
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    available = status.available_replicas or 0
    if updated < want:
        return RolloutState(False, False, f"{name}: {updated} of {want} replicas updated")
    if total > updated:
        return RolloutState(False, False, f"{name}: {total - updated} old replicas pending termination")
    if available < updated:
        return RolloutState(False, False, f"{name}: {available} of {updated} updated replicas available")
    return RolloutState(True, False, f"{name}: rolled out ({available} available)")


def wait_for_rollout(apps: Any, namespace: str, name: str, timeout: float) -> str:
    def check() -> tuple[bool, str]:
        state = rollout_state(apps.read_namespaced_deployment(name, namespace))
        if state.failed:
            raise AssertionError(state.message)
        return state.done, state.message

    return wait_until(check, timeout=timeout, what=f"rollout of deployment/{name}")


def pod_is_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ready_pods(core: Any, namespace: str, selector: str) -> list[Any]:
    """The pods matching ``selector`` that are Ready and not on their way out."""
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [pod for pod in pods if pod.metadata.deletion_timestamp is None and pod_is_ready(pod)]


def selector_string(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


# --- reading the workload ---------------------------------------------------------------------------------


def container_port_number(container: Any, port: int | str) -> int | None:
    """Resolve a probe's port (a number or a container port name) to a number."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.ports or []:
        if p.name == port:
            return int(p.container_port)
    return None


def pick_service(services: Iterable[Any], port: int) -> str:
    """Name of the one Service exposing `port`; the chart may also render others (e.g. a headless one)."""
    names = [
        s.metadata.name
        for s in services
        if s.spec.cluster_ip != "None" and any(p.port == port for p in s.spec.ports or [])
    ]
    if len(names) != 1:
        raise LookupError(f"expected exactly one Service exposing port {port}, found {names or 'none'}")
    return names[0]


def hpa_cpu_target(hpa: Any) -> int | None:
    """The average CPU utilisation target (percent) of an autoscaling/v2 HPA, if it has one."""
    for metric in hpa.spec.metrics or []:
        if metric.type == "Resource" and metric.resource and metric.resource.name == "cpu":
            target = metric.resource.target
            if target and target.type == "Utilization":
                return int(target.average_utilization)
    return None


# --- in-cluster load --------------------------------------------------------------------------------------


def load_job_manifest(
    *,
    name: str,
    namespace: str,
    image: str,
    url: str,
    seconds: float,
    concurrency: int,
    method: str = "GET",
    body: str | None = None,
    max_requests: int = 200_000,
    run_as_user: int = 10001,
) -> dict[str, Any]:
    """A Job that runs loadgen.py with the service image's interpreter against `url`.

    It runs as the restricted Pod Security profile requires, is bounded by count and time (and by an
    activeDeadlineSeconds a little past that), and cleans itself up."""
    args = ["--url", url, "--method", method, "--seconds", f"{seconds:g}", "--concurrency", str(concurrency)]
    args += ["--requests", str(max_requests), "--timeout", "10"]
    if body is not None:
        args += ["--body", body]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "flask-svc-e2e"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(seconds) + 120,
            "ttlSecondsAfterFinished": 600,
            "template": {
                # The Job controller adds the `job-name` label that job_logs() selects by.
                "metadata": {"labels": {"app.kubernetes.io/part-of": "flask-svc-e2e"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": run_as_user,
                        "runAsGroup": run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "load",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            # `command` replaces the image's entrypoint (gunicorn) with its Python.
                            "command": ["python", "-c", LOADGEN_SOURCE],
                            "args": args,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def parse_load_summary(logs: str) -> LoadResult:
    """The JSON summary is the last non-empty line loadgen prints."""
    lines = [line for line in logs.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the load job printed nothing")
    return LoadResult.from_json(lines[-1])


def job_finished(job: Any) -> tuple[bool, str]:
    status = job.status
    if status.succeeded:
        return True, "succeeded"
    if status.failed:
        return True, "failed"
    return False, f"active={status.active or 0}"


def await_load_job(
    batch: Any, core: Any, namespace: str, name: str, *, timeout: float, interval: float = 3.0
) -> LoadResult:
    """Wait for the load Job to finish and return the summary its pod printed."""
    outcome = wait_until(
        lambda: job_finished(batch.read_namespaced_job(name, namespace)),
        timeout=timeout,
        interval=interval,
        what=f"job/{name}",
    )
    logs = job_logs(core, namespace, name)
    if outcome != "succeeded":
        raise AssertionError(f"load job {name} {outcome}; its logs:\n{logs}")
    return parse_load_summary(logs)


def start_load_job(batch: Any, manifest: dict[str, Any]) -> None:
    meta = manifest["metadata"]
    delete_job(batch, meta["namespace"], meta["name"])
    batch.create_namespaced_job(meta["namespace"], manifest)


def job_logs(core: Any, namespace: str, name: str) -> str:
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    if not pods:
        return ""
    return str(core.read_namespaced_pod_log(pods[0].metadata.name, namespace))


def delete_job(batch: Any, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
    except ApiException as exc:
        if exc.status != 404:
            raise
        return

    def gone() -> tuple[bool, str]:
        try:
            batch.read_namespaced_job(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True, "deleted"
            raise
        return False, "still terminating"

    wait_until(gone, timeout=120, what=f"deletion of job/{name}")


# --- port-forwarding --------------------------------------------------------------------------------------


class TcpRelay:
    """A loopback listener that pipes each accepted connection to a fresh upstream connection.

    `connect` returns anything socket-like with recv/sendall/close/fileno: a TCP socket in the unit tests,
    the socket of a `kubernetes.stream.portforward` stream in the e2e suite. Any HTTP client can then talk
    to `url` as if the pod's port were local.
    """

    def __init__(self, connect: Callable[[], Any], *, host: str = "127.0.0.1", bufsize: int = 65536) -> None:
        self._connect = connect
        self._bufsize = bufsize
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[Any] = set()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.host = host
        self.port: int = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TcpRelay:
        thread = threading.Thread(target=self._accept_loop, name=f"relay-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _close_quietly(sock)
            self._open.clear()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> TcpRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed by stop()
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _track(self, *socks: Any) -> None:
        with self._lock:
            self._open.update(socks)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        try:
            upstream = self._connect()
        except Exception as exc:
            self.errors.append(f"upstream connect failed: {type(exc).__name__}: {exc}")
            self._release(client)
            return
        self._track(upstream)
        try:
            self._pipe(client, upstream)
        finally:
            self._release(client, upstream)

    def _pipe(self, client: Any, upstream: Any) -> None:
        peers = {client: upstream, upstream: client}
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(self._bufsize)
                    if not data:
                        return  # one side finished: the exchange is over
                    peers[sock].sendall(data)
            except (OSError, ValueError) as exc:
                if not self._stopping.is_set():
                    self.errors.append(f"relay: {type(exc).__name__}: {exc}")
                return

    def _release(self, *socks: Any) -> None:
        with self._lock:
            for sock in socks:
                self._open.discard(sock)
        for sock in socks:
            _close_quietly(sock)


def _close_quietly(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def pod_port_relay(namespace: str, pod: str, port: int) -> TcpRelay:
    """A TcpRelay whose upstream is `port` of `pod`, through the API server's portforward subresource."""
    from kubernetes import client
    from kubernetes.stream import portforward

    # stream() swaps the ApiClient's request method while it runs: give the relay its own client and
    # open one stream at a time.
    core = client.CoreV1Api(api_client=client.ApiClient())
    lock = threading.Lock()

    def connect() -> Any:
        with lock:
            forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
        return forward.socket(port)

    return TcpRelay(connect)


# --- helm ---------------------------------------------------------------------------------------------------


def helm_binary() -> str | None:
    return shutil.which(os.environ.get("HELM", "helm"))


def helm_test(release: str, namespace: str, *, timeout: str = "5m") -> subprocess.CompletedProcess[str]:
    helm = helm_binary()
    if helm is None:
        raise FileNotFoundError("helm is not on PATH")
    # No --logs: the chart deletes a test pod once it succeeds (hook-succeeded), before helm could read its logs, and
    # a failed one stays behind for `kubectl logs`.
    cmd = [helm, "test", release, "--namespace", namespace, "--timeout", timeout]
    context = os.environ.get(CONTEXT_ENV)
    if context:
        cmd += ["--kube-context", context]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def helm4_binary() -> str | None:
    """Helm 4 (server-side apply by default), installed as `helm4` by `make setup-e2e`."""
    return shutil.which(os.environ.get("HELM4", "helm4"))


def run_tool(argv: list[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """helm or kubectl against the suite's context; output captured for the assertion message."""
    context = os.environ.get(CONTEXT_ENV)
    if context:
        # Right after the program: anything after a `--` (kubectl exec) belongs to the command in the container.
        flag = "--kube-context" if Path(argv[0]).name.startswith("helm") else "--context"
        argv = [argv[0], flag, context, *argv[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def api_warnings(stderr: str) -> list[str]:
    """Lines in which the API server (through helm or kubectl) warned: Pod Security, deprecations, …"""
    return [line for line in stderr.splitlines() if "warning" in line.lower() or "would violate" in line.lower()]


def restricted_namespace(core: Any, name: str) -> None:
    """A namespace that enforces (and warns and audits at) the restricted Pod Security Standard."""
    from kubernetes import client

    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))


def delete_namespace(core: Any, name: str, timeout: float = 180) -> None:
    from kubernetes.client.rest import ApiException

    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise

    def gone() -> tuple[bool, str]:
        try:
            ns = core.read_namespace(name)
        except ApiException as exc:
            return exc.status == 404, f"HTTP {exc.status}"
        return False, f"phase={ns.status.phase}"

    wait_until(gone, timeout=timeout, what=f"namespace {name} to be deleted")


BATCH_STAGE_SELECTOR = "app.kubernetes.io/component=batch-stage"


@contextlib.contextmanager
def batch_release(
    core: Any,
    *,
    namespace: str,
    release: str,
    claim: str,
    volume: str,
    host_dir: Path,
    size: str,
    values: list[str],
) -> Iterator[None]:
    """A release with batch on, in a restricted namespace of its own, on a static hostPath volume (the cluster has no
    storage provisioner), installed from scratch with the suite's image and ``values`` (``--set`` pairs), and removed
    after with everything it made: stage Jobs, namespace, volume and the volume's directory."""
    from kubernetes import client

    helm = helm_binary()
    assert helm, "helm is not on PATH"
    delete_namespace(core, namespace)
    _delete_volume(core, volume)
    shutil.rmtree(host_dir, ignore_errors=True)
    host_dir.mkdir(mode=0o770, parents=True)
    os.chown(host_dir, 10001, 10001)  # hostPath volumes get no fsGroup: the pods' user must own it already
    core.create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=volume),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": size},
                access_modes=["ReadWriteOnce"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                claim_ref=client.V1ObjectReference(namespace=namespace, name=claim),
                host_path=client.V1HostPathVolumeSource(path=str(host_dir), type="Directory"),
            ),
        )
    )
    restricted_namespace(core, namespace)
    repository, _, tag = os.environ.get("FLASK_SVC_E2E_IMAGE", "flask-svc:e2e").rpartition(":")
    result = run_tool(
        [
            helm, "install", release, "charts/flask-svc", "--namespace", namespace,
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "batch.enabled=true", "--set", "batch.persistence.storageClass=",
            "--set", f"batch.persistence.size={size}", "--set", "autoscaling.enabled=false",
            *values, "--wait", "--timeout", "4m",
        ]
    )  # fmt: skip
    assert result.returncode == 0, f"helm install failed:\n{result.stdout}\n{result.stderr}"
    assert not api_warnings(result.stderr), f"the API server warned:\n{result.stderr}"
    try:
        yield
    finally:
        # Stage Jobs are the service's, not Helm's: left alone they would hold the claim until their TTL.
        client.BatchV1Api().delete_collection_namespaced_job(
            namespace, label_selector=BATCH_STAGE_SELECTOR, propagation_policy="Foreground"
        )
        run_tool([helm, "uninstall", release, "--namespace", namespace, "--wait"])
        delete_namespace(core, namespace)
        _delete_volume(core, volume)
        shutil.rmtree(host_dir, ignore_errors=True)


def _delete_volume(core: Any, name: str) -> None:
    from kubernetes.client.rest import ApiException

    try:
        core.delete_persistent_volume(name)
    except ApiException as error:
        if error.status != 404:
            raise
