"""One reconciler at a time: the file lock between processes, the Lease between pods.

The Lease is exercised against an in-memory stand-in for the three calls it makes (read, create, replace with the
API server's compare-and-swap on resourceVersion), using the client's own model and exception types; the live
cluster proves it against the real API server (tests/e2e/test_e2e_batch_bounds.py).
"""

from __future__ import annotations

import copy
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from service.batch import leader as leader_module
from service.batch.leader import FileLeader, LeaseLeader
from service.batch.reconciler import Reconciler


def test_one_holder_of_the_file_lock_until_it_lets_go(tmp_path: Path) -> None:
    first, second = FileLeader(tmp_path / "lock"), FileLeader(tmp_path / "lock")
    assert first.lead() and first.lead()
    assert not second.lead()
    first.release()
    assert second.lead() and not first.lead()


def test_another_process_cannot_take_the_lock_while_it_is_held(tmp_path: Path) -> None:
    holder = FileLeader(tmp_path / "lock")
    assert holder.lead()
    probe = "import sys; from pathlib import Path; from service.batch.leader import FileLeader; "
    probe += "sys.exit(0 if FileLeader(Path(sys.argv[1])).lead() else 1)"
    assert subprocess.run([sys.executable, "-c", probe, str(tmp_path / "lock")], check=False).returncode == 1
    holder.release()
    assert subprocess.run([sys.executable, "-c", probe, str(tmp_path / "lock")], check=False).returncode == 0


def test_the_lock_is_never_followed_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "lock").symlink_to(tmp_path / "elsewhere")
    assert not FileLeader(tmp_path / "lock").lead()
    assert not (tmp_path / "elsewhere").exists()


class LeaseApi:
    """read/create/replace of one namespace's Leases, refusing a replace whose resourceVersion is stale (409)."""

    def __init__(self) -> None:
        self.leases: dict[str, client.V1Lease] = {}
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ApiException(status=503, reason="Service Unavailable")

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> client.V1Lease:
        self._check()
        if name not in self.leases:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.leases[name])

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease, **_: Any) -> client.V1Lease:
        self._check()
        if body.metadata.name in self.leases:
            raise ApiException(status=409, reason="Conflict")
        return self._store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease, **_: Any) -> client.V1Lease:
        self._check()
        if self.leases[name].metadata.resource_version != body.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        return self._store(body)

    def _store(self, body: client.V1Lease) -> client.V1Lease:
        self.version += 1
        stored = copy.deepcopy(body)
        stored.metadata.resource_version = str(self.version)
        self.leases[stored.metadata.name] = stored
        return stored

    def holder(self) -> str | None:
        return self.leases["lease"].spec.holder_identity  # type: ignore[no-any-return]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(leader_module.time, "monotonic", clock)
    return clock


def _pod(api: LeaseApi, name: str) -> LeaseLeader:
    return LeaseLeader(api, "ns", "lease", name, duration=15)


def test_one_pod_holds_the_lease_and_another_takes_it_once_unrenewed(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.batch.leader")
    api = LeaseApi()
    a, b = _pod(api, "pod-a"), _pod(api, "pod-b")
    assert a.lead() and not b.lead()
    clock.now += 10
    assert a.lead() and not b.lead()  # renewed: b saw it change
    clock.now += 14
    assert not b.lead()  # 14 s since b last saw a renewal
    clock.now += 2  # a is gone: no renewal for 16 s
    assert b.lead() and api.holder() == "pod-b"
    assert api.leases["lease"].spec.lease_transitions == 1
    assert not a.lead()  # a came back: it sees b's Lease, fresh to a
    gained = [r for r in caplog.records if r.getMessage() == "reconciler leadership gained"]
    lost = [r for r in caplog.records if r.getMessage() == "reconciler leadership lost"]
    assert [r.holder for r in gained] == ["pod-a", "pod-b"] and [r.holder for r in lost] == ["pod-a"]  # type: ignore[attr-defined]


def test_of_two_takers_one_wins(clock: Clock) -> None:
    api = LeaseApi()
    a, b, c = _pod(api, "pod-a"), _pod(api, "pod-b"), _pod(api, "pod-c")
    assert a.lead() and not b.lead() and not c.lead()
    clock.now += 16
    # b and c both read the expired Lease before either writes: the API server's resourceVersion check decides.
    stale = api.read_namespaced_lease("lease", "ns")
    real_read = api.read_namespaced_lease
    api.read_namespaced_lease = lambda *_, **__: copy.deepcopy(stale)  # type: ignore[method-assign]
    assert b.lead()
    assert not c.lead()
    api.read_namespaced_lease = real_read  # type: ignore[method-assign]
    assert api.holder() == "pod-b"


def test_a_released_lease_is_taken_at_once_and_an_unreachable_api_means_not_leading(clock: Clock) -> None:
    api = LeaseApi()
    a, b = _pod(api, "pod-a"), _pod(api, "pod-b")
    assert a.lead() and not b.lead()
    a.release()
    assert b.lead()  # no need to wait 15 s
    api.down = True
    assert not b.lead()


def test_only_the_worker_holding_the_pod_lock_competes(tmp_path: Path, clock: Clock) -> None:
    api = LeaseApi()
    first = LeaseLeader(api, "ns", "lease", "pod-a", 15, FileLeader(tmp_path / "lock"))
    second = LeaseLeader(api, "ns", "lease", "pod-a", 15, FileLeader(tmp_path / "lock"))
    assert first.lead() and not second.lead()


def test_the_reconciler_reconciles_only_while_it_leads(tmp_path: Path) -> None:
    class Counting:
        rounds = 0

        def reconcile(self) -> None:
            Counting.rounds += 1

    class Never:
        def lead(self) -> bool:
            return False

    reconciler = Reconciler(Counting(), 0.01, Never())  # type: ignore[arg-type]
    reconciler.start()
    reconciler._thread.join(0.2)  # several rounds pass
    reconciler.stop()
    assert Counting.rounds == 0


def test_a_lease_shorter_than_two_rounds_stops_start_naming_the_variable() -> None:
    from service.config import ConfigError, load_settings

    environ = {
        "FLASK_SVC_BATCH_RUNNER": "kubernetes",
        "FLASK_SVC_BATCH_JOB_TEMPLATE": "{}",
        "FLASK_SVC_BATCH_CALLBACK_URL": "http://svc:8080",
        "FLASK_SVC_BATCH_RECONCILE_SECONDS": "10",
    }
    with pytest.raises(ConfigError, match=r"^FLASK_SVC_BATCH_LEASE_SECONDS=15 must exceed twice .*\(10\)"):
        load_settings(environ)
    assert load_settings({**environ, "FLASK_SVC_BATCH_LEASE_SECONDS": "21"}).batch_lease_seconds == 21
    assert load_settings({"FLASK_SVC_BATCH_RECONCILE_SECONDS": "10"}).batch_runner == "local"  # no Lease locally
