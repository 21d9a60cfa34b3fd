"""Who reconciles: one worker of one pod at a time, while every replica still answers requests and callbacks.

Reconciling twice is safe (every change is made under the job's lock) but wasteful: every worker of every replica
would read every record and ask the API server about every stage every few seconds. So each reconcile round first
asks its ``Leader``:

- ``FileLeader``: an ``flock`` that only one process can hold. In the data directory for the local runner (one
  worker of the processes sharing it); in the pod's own temporary directory for the ``kubernetes`` runner (one worker
  per pod, which then competes for the Lease under the pod's name).
- ``LeaseLeader``: a ``coordination.k8s.io`` Lease in the release namespace, held by one pod and renewed every round;
  another pod takes it once it has gone unrenewed for its duration (measured on the taker's own clock, from when it
  last saw the Lease change, so clocks need not agree).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from service.config import Settings

log = logging.getLogger(__name__)


class Leader(Protocol):
    def lead(self) -> bool:
        """Whether this process reconciles this round (acquiring or renewing as needed)."""


class FileLeader:
    """Held by whichever process first takes the lock; the others ask again each round (a dead holder's lock goes
    with its process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def lead(self) -> bool:
        if self._handle is not None:
            return True
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as error:
            log.warning("reconciler lock unavailable", extra={"path": str(self.path), "error": str(error)})
            return False
        handle = os.fdopen(descriptor, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        log.info("reconciler lock taken: this process reconciles", extra={"path": str(self.path), "pid": os.getpid()})
        return True

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class LeaseLeader:
    """A Lease named ``name`` held as ``identity``; ``api`` is a ``kubernetes.client.CoordinationV1Api``. Only the
    worker holding ``local`` (one per pod) competes."""

    def __init__(
        self, api: Any, namespace: str, name: str, identity: str, duration: float, local: FileLeader | None = None
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.local = local
        self.leading = False
        self._seen: tuple[str | None, float] = (None, 0.0)  # the Lease's resourceVersion, when it was first seen

    def lead(self) -> bool:
        if self.local is not None and not self.local.lead():
            return False
        try:
            leading = self._try()
        except Exception as error:  # the API away: not leading (another pod that can reach it will be)
            log.warning("reconciler Lease unavailable", extra={"lease": self.name, "error": str(error)})
            leading = False
        if leading != self.leading:
            message = "reconciler leadership gained" if leading else "reconciler leadership lost"
            log.info(message, extra={"lease": self.name, "holder": self.identity})
            self.leading = leading
        return leading

    def _try(self) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        now = datetime.datetime.now(datetime.UTC)
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=(3.05, 5))
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=int(self.duration),
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            try:
                self.api.create_namespaced_lease(self.namespace, body, _request_timeout=(3.05, 5))
            except ApiException as raced:
                if raced.status == 409:
                    return False
                raise
            return True
        spec = lease.spec = lease.spec or client.V1LeaseSpec()  # an empty Lease someone made by hand
        version = lease.metadata.resource_version
        if version != self._seen[0]:
            self._seen = (version, time.monotonic())
        holder = spec.holder_identity
        if holder and holder != self.identity and time.monotonic() - self._seen[1] < self.duration:
            return False  # someone else's, and renewed within the duration
        if holder != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = int(self.duration)
        try:  # the resourceVersion makes this a compare-and-swap: of two takers, one wins
            self.api.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=(3.05, 5))
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def release(self) -> None:
        """Give the Lease up (at shutdown) so another pod need not wait for it to expire."""
        if not self.leading:
            return
        with contextlib.suppress(Exception):
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=(3.05, 5))
            if lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                self.api.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=(3.05, 5))
        self.leading = False
        if self.local is not None:
            self.local.release()


def lease_leader(namespace: str, name: str, identity: str, duration: float, local: FileLeader) -> LeaseLeader:
    """A ``LeaseLeader`` with the pod's own credentials (the kubernetes client is imported only here)."""
    from kubernetes import client, config

    config.load_incluster_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    configuration.retries = 1
    api = client.CoordinationV1Api(client.ApiClient(configuration))
    return LeaseLeader(api, namespace, name, identity, duration, local)


def make_leader(settings: Settings) -> Leader:
    """The Lease for the ``kubernetes`` runner, otherwise a lock in the data directory."""
    if settings.batch_runner != "kubernetes":
        return FileLeader(Path(settings.batch_data_dir) / ".reconciler.lock")
    from service.batch.kube import namespace

    identity = settings.pod_name or socket.gethostname()
    local = FileLeader(Path(tempfile.gettempdir()) / f"flask-svc-reconciler-{os.getuid()}.lock")
    return lease_leader(namespace(settings), settings.batch_lease_name, identity, settings.batch_lease_seconds, local)
