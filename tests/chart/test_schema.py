"""values.schema.json: it describes every value, accepts every scenario, and makes `helm template` fail on bad
values with a message naming the key."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.conftest import CHART, SCENARIOS, Helm, iter_leaves, values_file

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())

INGRESS_CLASS_ANNOTATION = "ingress.annotations.kubernetes\\.io/ingress\\.class=nginx"

# (values that must be refused, text the error must contain: the offending key)
BAD_VALUES: list[tuple[list[str], str]] = [
    (["--set", "replicaCount=-1"], "replicaCount"),
    (["--set-string", "replicaCount=two"], "replicaCount"),
    (["--set", "nope=1"], "nope"),
    (["--set", "service.prot=8080"], "prot"),
    (["--set", "autoscaling.minReplica=3"], "minReplica"),
    (["--set", "securityContext.readOnlyRootFilesytem=true"], "readOnlyRootFilesytem"),
    (["--set-string", "service.port=http"], "service.port"),
    (["--set", "service.port=70000"], "service.port"),
    (["--set", "service.type=Internal"], "service.type"),
    (["--set", "image.pullPolicy=Sometimes"], "image.pullPolicy"),
    (["--set-json", "image.tag=1.10"], "image.tag"),  # YAML would read an unquoted 1.10 as 1.1
    (["--set", "image.digest=latest"], "image.digest"),
    (["--set", "config.logLevel=verbose"], "config.logLevel"),
    (["--set", "config.logFormat=xml"], "config.logFormat"),
    (["--set-string", "config.debugEndpoints=yes"], "config.debugEndpoints"),
    (["--set", "config.maxUploadBytes=0"], "config.maxUploadBytes"),
    (["--set", "gunicorn.workers=0"], "gunicorn.workers"),
    (["--set-string", "gunicorn.threads=four"], "gunicorn.threads"),
    (["--set", "gunicorn.gracefulTimeout=-5"], "gunicorn.gracefulTimeout"),
    (["--set", "lifecycle.preStopAction=wait"], "lifecycle.preStopAction"),
    (["--set", "readinessProbe.periodSeconds=0"], "readinessProbe.periodSeconds"),
    (["--set", "livenessProbe.successThreshold=2"], "livenessProbe.successThreshold"),
    (["--set", "podSecurityContext.runAsUser=-1"], "podSecurityContext.runAsUser"),
    (["--set", "podSecurityContext.seccompProfile.type=Default"], "podSecurityContext.seccompProfile.type"),
    (["--set", "autoscaling.minReplicas=0"], "autoscaling.minReplicas"),
    (["--set", "autoscaling.behavior.scaleUp.selectPolicy=Fastest"], "autoscaling.behavior.scaleUp.selectPolicy"),
    (["--set", "pdb.maxUnavailable=0"], "pdb.maxUnavailable"),
    (["--set", "pdb.unhealthyPodEvictionPolicy=Never"], "pdb.unhealthyPodEvictionPolicy"),
    (["--set", "otel.sampler=sometimes"], "otel.sampler"),
    (["--set", "otel.samplerArg=2"], "otel.samplerArg"),
    (["--set", "otel.endpoint=collector:4318"], "otel.endpoint"),
    (["--set", "metrics.serviceMonitor.interval=30"], "metrics.serviceMonitor.interval"),
    (["--set", "tmpDir.medium=Disk"], "tmpDir.medium"),
    (["--set", "networkPolicy.ingress.from[0].podSelecter.app=x"], "podSelecter"),
    (["--set", "keda.prometheus.threshold=0"], "keda.prometheus.threshold"),
    # Refused in the templates with the reason, not by a schema "not" that says only "'not' failed".
    (["--set", "metricsDir.path=/tmp"], 'metricsDir.path: "/tmp" is where the tmp emptyDir is mounted'),
    (["--set", "metricsDir.path=/tmp/"], 'metricsDir.path: "/tmp/" is where the tmp emptyDir is mounted'),
    (["--set", "metrics.port=8080"], "metrics.port: 8080 is the application's port"),
    # Quantities, image references and ports people get wrong.
    (["--set", "resources.limits.memory=512m"], "resources.limits.memory"),  # millibytes
    (["--set", "resources.requests.memory=-1Gi"], "resources.requests.memory"),
    (["--set", "tmpDir.sizeLimit=256m"], "tmpDir.sizeLimit"),
    (["--set", "resources.limits.cpu=500"], "resources.limits.cpu"),  # 500 cores: meant 500m
    (["--set-string", "resources.limits.cpu=500"], "resources.limits.cpu"),
    (["--set", "resources.requests.cpu=-1"], "resources.requests.cpu"),
    (["--set-string", "resources.requests.cpu=-200m"], "resources.requests.cpu"),
    (["--set", "image.repository=ghcr.io/flask-svc/flask-svc:0.1.0"], "image.repository"),
    (["--set", "image.repository=flask-svc@sha256:" + "ab" * 32], "image.repository"),
    (["--set", "service.type=NodePort", "--set", "service.nodePort=8080"], "service.nodePort"),
    (["--set", "service.type=NodePort", "--set", "service.nodePort=32768"], "service.nodePort"),
    (["--set-json", "networkPolicy.egress.dnsPorts=[]"], "networkPolicy.egress.dnsPorts"),
    # Two values compared: the templates check them, naming both keys.
    (["--set", "resources.requests.memory=1Gi"], "resources.requests.memory (1Gi) is above resources.limits.memory"),
    (
        ["--set", "resources.limits.cpu=100m"],  # the request is 200m
        "resources.requests.cpu (200m) is above resources.limits.cpu (100m)",
    ),
    (
        ["--set", "metrics.serviceMonitor.interval=30s", "--set", "metrics.serviceMonitor.scrapeTimeout=1m"],
        "metrics.serviceMonitor.scrapeTimeout (1m) is longer than metrics.serviceMonitor.interval (30s)",
    ),
    (
        ["--set", "ingress.enabled=true", "--set", "ingress.className=nginx", "--set", INGRESS_CLASS_ANNOTATION],
        "ingress.className and the annotation kubernetes.io/ingress.class",
    ),
    (["--set-json", 'extraEnv=[{"name":"A","value":"1"},{"name":"A"}]'], 'extraEnv: two entries with name "A"'),
    (["--set-json", 'volumes=[{"name":"v","emptyDir":{}},{"name":"v"}]'], 'volumes: two entries with name "v"'),
    (
        ["--set-json", 'volumeMounts=[{"name":"a","mountPath":"/d"},{"name":"b","mountPath":"/d"}]'],
        'volumeMounts: two entries with mountPath "/d"',
    ),
    (["--set", "podLabels.app\\.kubernetes\\.io/name=x"], "podLabels"),  # would break the selector
    (["--set", "commonLabels.app\\.kubernetes\\.io/component=x"], "commonLabels"),
    # Cross-field checks made in the templates.
    (["--set", "resources.requests=null"], "resources.requests.cpu"),  # the HPA would never scale
    (
        ["--set", "resources.requests.memory=null", "--set", "autoscaling.targetMemoryUtilizationPercentage=80"],
        "resources.requests.memory",
    ),
    (["--set", "ingress.enabled=true", "--set-json", "ingress.hosts=[]"], "ingress.hosts"),
    (["--set", "terminationGracePeriodSeconds=29"], "terminationGracePeriodSeconds"),
    (["--set", "gunicorn.gracefulTimeout=60", "--set", "terminationGracePeriodSeconds=60"], "gunicorn.gracefulTimeout"),
    (["--set", "autoscaling.minReplicas=5", "--set", "autoscaling.maxReplicas=3"], "autoscaling.maxReplicas"),
    (["--set", "keda.enabled=true", "--set", "keda.minReplicaCount=9", "--set", "keda.maxReplicaCount=3"], "keda"),
]


@pytest.mark.parametrize(("flags", "key"), BAD_VALUES, ids=[" ".join(flags) for flags, _ in BAD_VALUES])
def test_bad_values_fail_naming_the_key(chart: Helm, flags: list[str], key: str) -> None:
    result = chart.template(*flags)
    assert result.returncode != 0, f"{flags} rendered"
    assert key in result.stderr, result.stderr


def test_grace_period_exactly_the_drain_is_accepted(chart: Helm) -> None:
    drain = DEFAULTS["lifecycle"]["preStopSleepSeconds"] + DEFAULTS["gunicorn"]["gracefulTimeout"]
    drain += DEFAULTS["lifecycle"]["drainMarginSeconds"]
    assert chart.template("--set", f"terminationGracePeriodSeconds={drain}").returncode == 0
    assert chart.template("--set", f"terminationGracePeriodSeconds={drain - 1}").returncode != 0


# Values near the edges that must still render.
GOOD_VALUES: list[list[str]] = [
    ["--set", "image.repository=localhost:5000/team/flask-svc"],
    ["--set", "image.repository=flask-svc"],  # what skaffold and the kind install path set
    ["--set", "resources.limits.cpu=1.5", "--set", "resources.requests.cpu=1500m"],  # equal: allowed
    ["--set", "resources.limits.cpu=32"],
    ["--set-string", "resources.limits.cpu=32000m"],
    ["--set", "resources.limits.memory=1G", "--set", "resources.requests.memory=1G"],
    ["--set", "resources.limits.memory=536870912"],  # plain bytes
    ["--set", "service.type=NodePort", "--set", "service.nodePort=30080"],
    ["--set", "metrics.serviceMonitor.interval=1m", "--set", "metrics.serviceMonitor.scrapeTimeout=1m"],
    ["--set", "metrics.serviceMonitor.interval=1m30s", "--set", "metrics.serviceMonitor.scrapeTimeout=45s"],
    ["--set", "ingress.enabled=true", "--set", INGRESS_CLASS_ANNOTATION],
    ["--set", "metricsDir.path=/tmp/metrics", "--set", "metrics.port=9100"],
]


@pytest.mark.parametrize("flags", GOOD_VALUES, ids=[" ".join(flags) for flags in GOOD_VALUES])
def test_values_near_the_edges_render(chart: Helm, flags: list[str]) -> None:
    result = chart.template(*flags)
    assert result.returncode == 0, result.stderr


def test_schema_is_valid_draft7() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_defaults_and_scenarios_validate(scenario: str) -> None:
    """Python's validator agrees with helm's on the defaults merged with each scenario."""
    merged = _merge(DEFAULTS, yaml.safe_load(values_file(scenario).read_text()) or {})
    jsonschema.Draft7Validator(SCHEMA).validate(merged)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _schema_at(path: tuple[str, ...]) -> dict[str, Any] | None:
    """The schema node declared for a values path (properties only: additionalProperties does not count)."""
    node: dict[str, Any] = SCHEMA
    for key in path:
        properties = node.get("properties", {})
        if key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            return node  # a free-form map (labels, resources): its keys are data, not values
        else:
            return None
    return node


def test_schema_declares_every_value() -> None:
    missing = [".".join(path) for path, _ in iter_leaves(DEFAULTS) if _schema_at(path) is None]
    assert not missing, f"values without a schema: {missing}"


def test_schema_objects_reject_unknown_keys() -> None:
    """Every object the chart defines (not free-form maps) sets additionalProperties: false to catch typos."""
    loose = []

    def walk(node: dict[str, Any], where: str) -> None:
        props = node.get("properties")
        if props is not None and node.get("additionalProperties") is not False and where not in FREE_FORM:
            loose.append(where or "(root)")
        for key, child in (props or {}).items():
            walk(child, f"{where}.{key}".lstrip("."))

    walk(SCHEMA, "")
    assert not loose, f"objects that accept unknown keys: {loose}"


# Objects whose extra keys are data the chart passes on: resource names, and Kubernetes objects given verbatim.
FREE_FORM = {
    "global",
    "resources.requests",
    "resources.limits",
    "tests.resources.requests",
    "tests.resources.limits",
}
