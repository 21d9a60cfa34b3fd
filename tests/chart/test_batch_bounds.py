"""The chart's fences around the batch runner: the caps handed to the service, the Lease it may hold, the admission
policy on what its token may create, the optional Job quota, API-server egress narrowed to named addresses, and the
claim's access mode checked against the replicas at render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import KUBE_OLDEST, NAMESPACE, RELEASE, Helm, by_kind, one
from tests.chart.test_manifests import container, env_of

ON = ("--set", "batch.enabled=true")
POLICY = f"{RELEASE}-{NAMESPACE}-batch-stages"


def _policy(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "ValidatingAdmissionPolicy", POLICY)


def test_the_caps_reach_the_service(chart: Helm) -> None:
    env = env_of(chart.render(*ON, "--set", "batch.maxRunningStages=3", "--set", "batch.retentionSeconds=30"))
    assert env["FLASK_SVC_BATCH_MAX_RUNNING_STAGES"] == "3"
    assert env["FLASK_SVC_BATCH_MAX_ACTIVE_JOBS_PER_OWNER"] == "20"
    assert env["FLASK_SVC_BATCH_MAX_STORED_BYTES"] == "8589934592"
    assert env["FLASK_SVC_BATCH_RETENTION_SECONDS"] == "30"
    assert env["FLASK_SVC_BATCH_LEASE_NAME"] == f"{RELEASE}-batch-reconciler"
    assert env["FLASK_SVC_BATCH_LEASE_SECONDS"] == "15"


def test_the_admission_policy_fences_the_service_account_to_its_stage_jobs(chart: Helm) -> None:
    docs = chart.render(*ON)
    policy = _policy(docs)
    assert "namespace" not in policy["metadata"]  # cluster-scoped: the name carries the release and namespace
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
    assert spec["matchConstraints"]["resourceRules"][0]["resources"] == ["jobs"]
    who = spec["matchConditions"][0]["expression"]
    assert f"'system:serviceaccount:{NAMESPACE}:{RELEASE}'" in who
    rules = " ".join(v["expression"] for v in spec["validations"])
    image = container(one(docs, "Deployment", RELEASE))["image"]
    facts = [
        f"c.image == '{image}'",
        "c.command == ['python', '-m', 'service.batch']",
        f"claimName == '{RELEASE}-batch'",
        "automountServiceAccountToken == false",
        "has(v.emptyDir)",
        "'ALL' in c.securityContext.capabilities.drop",
        "!has(c.envFrom)",
        f"startsWith('{RELEASE}-')",
    ]
    for fact in facts:
        assert fact in rules, fact
    assert all(v["reason"] == "Forbidden" and v["message"] for v in spec["validations"])
    binding = one(docs, "ValidatingAdmissionPolicyBinding", POLICY)
    assert binding["spec"]["policyName"] == POLICY and binding["spec"]["validationActions"] == ["Deny"]


def test_releases_get_their_own_policy_names(chart: Helm) -> None:
    other = chart.render(*ON, release="other")
    assert (
        by_kind(other, "ValidatingAdmissionPolicy")[0]["metadata"]["name"]
        == f"other-flask-svc-{NAMESPACE}-batch-stages"
    )


def test_no_policy_when_off_or_before_1_30(chart: Helm) -> None:
    assert by_kind(chart.render(*ON, "--set", "batch.admissionPolicy.enabled=false"), "ValidatingAdmissionPolicy") == []
    assert by_kind(chart.render(*ON, kube_version=KUBE_OLDEST), "ValidatingAdmissionPolicy") == []
    assert by_kind(chart.render(), "ValidatingAdmissionPolicy") == []


def test_the_job_quota_is_optional_and_at_least_twice_the_running_cap(chart: Helm) -> None:
    assert by_kind(chart.render(*ON), "ResourceQuota") == []
    quota = one(chart.render(*ON, "--set", "batch.jobQuota=8"), "ResourceQuota", f"{RELEASE}-batch")
    assert quota["spec"] == {"hard": {"count/jobs.batch": "8"}}
    refused = chart.template(*ON, "--set", "batch.jobQuota=7")
    assert refused.returncode != 0 and "batch.jobQuota (7)" in refused.stderr


def test_api_server_egress_goes_to_the_named_addresses_only(chart: Helm) -> None:
    docs = chart.render(*ON, "--set", "batch.apiServerEgress.cidrs={10.244.0.1/32}")
    egress = one(docs, "NetworkPolicy", RELEASE)["spec"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "10.244.0.1/32"}}],
        "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
    } in egress
    assert all(rule.get("to") for rule in egress), "a rule without peers allows every address"
    unnamed = chart.template(*ON, "--set", "batch.apiServerEgress.cidrs=")
    assert unnamed.returncode != 0 and "batch.apiServerEgress.cidrs" in unnamed.stderr
    bad = chart.template(*ON, "--set", "batch.apiServerEgress.cidrs={anywhere}")
    assert bad.returncode != 0 and "cidrs" in bad.stderr


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (("--set", "batch.persistence.accessModes={ReadWriteOncePod}"), "batch.persistence.accessModes"),
        (
            (
                "--set", "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
                "--set", "topologySpreadConstraints[0].maxSkew=1",
                "--set", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
            ),
            "batch.persistence.accessModes",
        ),
    ],
)  # fmt: skip
def test_a_claim_the_replicas_cannot_share_fails_naming_the_key(chart: Helm, flags: tuple[str, ...], key: str) -> None:
    result = chart.template(*ON, *flags)
    assert result.returncode != 0 and key in result.stderr


def test_a_read_write_once_claim_with_a_soft_spread_is_warned_about(chart: Helm, tmp_path: Path) -> None:
    warned = chart.notes(tmp_path, *ON)
    assert "WARNING: the batch claim is ReadWriteOnce" in warned and "Multi-Attach" in warned
    assert "Lease flask-svc-batch-reconciler" in warned
    shared = chart.notes(tmp_path / "rwx", *ON, "--set", "batch.persistence.accessModes={ReadWriteMany}")
    assert "WARNING: the batch claim" not in shared
    # One replica with a ReadWriteMany claim passes; ReadWriteOnce with one replica renders (the stage pods follow
    # the volume's node where it pins them).
    assert chart.template(*ON, "--set", "autoscaling.enabled=false", "--set", "replicaCount=1").returncode == 0


def test_a_lease_that_would_lapse_between_rounds_fails_naming_the_key(chart: Helm) -> None:
    refused = chart.template(*ON, "--set", "batch.reconcileSeconds=10")
    assert (
        refused.returncode != 0
        and "batch.leaseSeconds (15) must exceed twice batch.reconcileSeconds (10)" in refused.stderr
    )
    assert chart.template(*ON, "--set-json", "batch.reconcileSeconds=2.5").returncode == 0
