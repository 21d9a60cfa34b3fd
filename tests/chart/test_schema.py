"""values.schema.json: it describes every value, accepts every scenario, and makes `helm template` fail on bad
values with a message naming the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.conftest import CHART, SCENARIOS, Helm, iter_leaves, one, values_file

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
    (["--set-string", "model.enabled=yes"], "model.enabled"),
    (["--set", "model.maxInstances=0"], "model.maxInstances"),
    (["--set", "model.name=my model"], "model.name"),
    (["--set", "model.trustedTypes[0]=Halver"], "model.trustedTypes.0"),
    (["--set", "model.source.type=s3"], "model.source.type"),
    (["--set", "model.source.file=../etc/passwd"], "model.source.file"),
    (["--set", "model.source.file=/abs/model.skops"], "model.source.file"),
    (["--set", "model.sorce.type=pvc"], "sorce"),
    (
        ["--set", "model.enabled=true", "--set", "model.source.type=pvc"],
        "model.source.claimName: name the PersistentVolumeClaim",
    ),
    (
        ["--set", "model.enabled=true", "--set", "model.source.type=imageVolume"],
        "model.source.reference: name the OCI image",
    ),
    (["--set", "model.source.pullPolicy=Sometimes"], "model.source.pullPolicy"),
    (["--set", "batch.callbackKey.existingSecret=My_Key"], "batch.callbackKey.existingSecret"),
    (["--set", "batch.callbackKey.secretKey=a/b"], "batch.callbackKey.secretKey"),
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
    # Label and annotation syntax: the API server would refuse the object after the ones before it were created.
    (["--set-string", "podLabels.team=not valid!"], "podLabels.team"),  # the half-installed release
    (["--set-string", "podLabels.team=" + "a" * 64], "podLabels.team"),  # values: at most 63
    (["--set-string", "podLabels.team=-x"], "podLabels.team"),  # alphanumeric at both ends
    (["--set-string", "podLabels.Team\\.Example/team=a"], 'podLabels: Property name of "Team.Example/team"'),
    (["--set-string", "podLabels." + "a" * 64 + "=x"], "podLabels: Property name of"),  # names: at most 63
    (["--set-string", "podLabels." + "a" * 254 + "/x=y"], "podLabels: Property name of"),  # prefixes: at most 253
    (["--set-string", "commonLabels.a/b/c=x"], 'commonLabels: Property name of "a/b/c"'),
    (["--set-string", "commonLabels.team=a b"], "commonLabels.team"),
    (["--set-string", "commonAnnotations.-bad=x"], 'commonAnnotations: Property name of "-bad"'),
    (["--set-string", "podAnnotations.example\\.com/=x"], 'podAnnotations: Property name of "example.com/"'),
    (["--set-string", "nodeSelector.disktype=fast ssd"], "nodeSelector.disktype"),
    (
        ["--set-string", "serviceAccount.annotations.iam_gke/sa=x"],
        'serviceAccount.annotations: Property name of "iam_gke/sa"',
    ),
    (["--set-string", "service.labels.team=x_"], "service.labels.team"),
    (["--set-string", "service.annotations.a:b=x"], 'service.annotations: Property name of "a:b"'),
    (
        ["--set-string", "ingress.annotations.Nginx_Ingress/rewrite-target=/"],
        'ingress.annotations: Property name of "Nginx_Ingress/',
    ),
    (["--set-string", "httpRoute.labels.team=a/b"], "httpRoute.labels.team"),
    (["--set-string", "httpRoute.annotations.a\\ b=x"], 'httpRoute.annotations: Property name of "a b"'),
    (["--set-string", "metrics.monitorLabels.release=kube prometheus"], "metrics.monitorLabels.release"),
    (["--set-string", "metrics.service.labels.a\\ b=x"], 'metrics.service.labels: Property name of "a b"'),
    (["--set-string", "metrics.service.annotations./x=y"], 'metrics.service.annotations: Property name of "/x"'),
    (["--set-string", "metrics.serviceMonitor.labels.team=a@b"], "metrics.serviceMonitor.labels.team"),
    (["--set-string", "metrics.serviceMonitor.annotations._x=y"], "metrics.serviceMonitor.annotations"),
    (["--set-string", "metrics.prometheusRule.labels.team=" + "b" * 64], "metrics.prometheusRule.labels.team"),
    (["--set-string", "metrics.prometheusRule.annotations.a\\ b=x"], "metrics.prometheusRule.annotations"),
    (["--set-string", "metrics.serviceMonitor.jobLabel=app name"], "metrics.serviceMonitor.jobLabel"),
    (["--set-string", "dashboard.labels.team=a b"], "dashboard.labels.team"),
    (["--set-string", "dashboard.annotations.a\\ b=x"], "dashboard.annotations"),
    (["--set-string", "dashboard.label=grafana dashboard"], "dashboard.label"),
    (["--set-string", "dashboard.labelValue=yes please"], "dashboard.labelValue"),
    (["--set-string", "dashboard.folderAnnotation=grafana folder"], "dashboard.folderAnnotation"),
    # Selectors and scheduling fields the API server checks with the same syntax.
    (["--set-json", 'tolerations=[{"key":"a b","operator":"Exists"}]'], "tolerations.0.key"),
    (["--set-json", 'tolerations=[{"key":"k","operator":"Equal","value":"a b"}]'], "tolerations.0.value"),
    (["--set-json", 'tolerations=[{"key":"k","operator":"Exists","value":"v"}]'], "tolerations.0.value"),
    (["--set-json", 'tolerations=[{"operator":"Equal","value":"v"}]'], "tolerations.0.operator"),  # no key: Exists
    (
        ["--set-json", 'tolerations=[{"operator":"Exists","effect":"NoSchedule","tolerationSeconds":60}]'],
        "tolerations.0.effect",
    ),
    (
        [
            "--set-json",
            'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"zone name","whenUnsatisfiable":"DoNotSchedule"}]',
        ],
        "topologySpreadConstraints.0.topologyKey",
    ),
    (
        [
            "--set-json",
            'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway","minDomains":2}]',
        ],
        "topologySpreadConstraints.0.whenUnsatisfiable",
    ),
    (
        [
            "--set-json",
            'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule",'
            '"labelSelector":{"matchLabels":{"a":"b c"}}}]',
        ],
        "topologySpreadConstraints.0.labelSelector.matchLabels.a",
    ),
    (
        [
            "--set-json",
            'networkPolicy.ingress.metricsFrom=[{"namespaceSelector":'
            '{"matchLabels":{"kubernetes.io/metadata.name":"monitoring ns"}}}]',
        ],
        "networkPolicy.ingress.metricsFrom.0.namespaceSelector.matchLabels.kubernetes.io/metadata.name",
    ),
    (
        [
            "--set-json",
            'networkPolicy.ingress.from=[{"podSelector":{"matchExpressions":[{"key":"app","operator":"In"}]}}]',
        ],
        "networkPolicy.ingress.from.0.podSelector.matchExpressions.0: values is required",
    ),
    (
        [
            "--set-json",
            'networkPolicy.egress.dns=[{"podSelector":{"matchExpressions":[{"key":"a","operator":"Exists","values":["b"]}]}}]',
        ],
        "networkPolicy.egress.dns.0.podSelector.matchExpressions.0.values",
    ),
    # Names and other values the API server checks after some objects exist.
    (["--set", "fullnameOverride=1svc"], "fullnameOverride"),  # names the Service: a letter first
    (["--set", "priorityClassName=High_Priority"], "priorityClassName"),
    (["--set", "image.tag=1.0+build.5"], "image.tag"),  # written into the app.kubernetes.io/version label
    (["--set", "ingress.className=Nginx"], "ingress.className"),
    (
        [
            "--set",
            "ingress.hosts[0].host=flask-svc.example.com:8080",
            "--set",
            "ingress.hosts[0].paths[0].path=/",
            "--set",
            "ingress.hosts[0].paths[0].pathType=Prefix",
        ],
        "ingress.hosts.0.host",
    ),
    (["--set-json", 'ingress.tls=[{"secretName":"tls","hosts":["Flask.example.com"]}]'], "ingress.tls.0.hosts.0"),
    (["--set-json", 'httpRoute.hostnames=["example.com:443"]'], "httpRoute.hostnames.0"),
    (["--set-json", 'httpRoute.parentRefs=[{"name":"gw","sectionName":""}]'], "httpRoute.parentRefs.0.sectionName"),
    (["--set-json", 'httpRoute.rules=[{"timeouts":{"request":"10"}}]'], "httpRoute.rules.0.timeouts.request"),
    (["--set-json", 'volumes=[{"name":"My_Vol","emptyDir":{}}]'], "volumes.0.name"),
    (["--set", "strategy.rollingUpdate.maxUnavailable=150%"], "strategy.rollingUpdate.maxUnavailable"),
    (["--set", "pdb.maxUnavailable=101%"], "pdb.maxUnavailable"),
    (
        ["--set", "podSecurityContext.seccompProfile.type=Localhost"],
        "podSecurityContext.seccompProfile: localhostProfile is required",
    ),
    (["--set", "securityContext.seccompProfile.localhostProfile=x.json"], "securityContext.seccompProfile"),
    (
        ["--set-json", 'podSecurityContext.sysctls=[{"name":"net ipv4","value":"1"}]'],
        "podSecurityContext.sysctls.0.name",
    ),
    (["--set-json", 'batch.persistence.accessModes=["ReadWriteSometimes"]'], "batch.persistence.accessModes.0"),
    (["--set", "batch.persistence.mountPath=/tmp"], "batch.persistence.mountPath"),
    (["--set", "batch.backoffLimit=-1"], "batch.backoffLimit"),
    (["--set", "batch.maxUploadBytes=0"], "batch.maxUploadBytes"),
    (["--set", "batch.persistence.existingClaim=Bad_Claim"], "batch.persistence.existingClaim"),
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
    (
        ["--set", "strategy.rollingUpdate.maxSurge=0"],  # maxUnavailable is 0 by default
        "strategy.rollingUpdate.maxSurge and strategy.rollingUpdate.maxUnavailable are both 0",
    ),
    (["--set", "keda.enabled=true", "--set", "keda.minReplicaCount=9", "--set", "keda.maxReplicaCount=3"], "keda"),
    # The batch Role must not land on the namespace's "default" ServiceAccount.
    (["--set", "batch.enabled=true", "--set", "serviceAccount.create=false"], "serviceAccount.name"),
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
    # Label and annotation syntax at its edges.
    ["--set-string", "podLabels.example\\.com/team=a.b_c-1"],
    ["--set-string", "podLabels.team="],  # an empty label value
    ["--set-string", "commonLabels." + "a" * 63 + "=" + "b" * 63],
    ["--set-string", "commonLabels." + "a" * 253 + "/" + "A_b" + "=x"],
    ["--set-string", "podAnnotations.Example\\.COM/Owner=any text: even with spaces!"],  # case-free prefix
    ["--set-string", "commonAnnotations.owner="],
    ["--set-string", "metrics.monitorLabels.release=kube-prometheus-stack"],
    ["--set-string", "nodeSelector.kubernetes\\.io/os=linux"],
    ["--set-string", "dashboard.labelValue="],
    ["--set-string", "metrics.serviceMonitor.jobLabel=app.kubernetes.io/name"],
    ["--set-json", 'tolerations=[{"operator":"Exists"}]'],
    ["--set-json", 'tolerations=[{"key":"example.com/dedicated","operator":"Equal","value":"","effect":"NoSchedule"}]'],
    [
        "--set-json",
        'tolerations=[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":30}]',
    ],
    [
        "--set-json",
        'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule","minDomains":2,'
        '"labelSelector":{"matchExpressions":[{"key":"tier","operator":"Exists"},{"key":"app","operator":"In","values":["a",""]}]}}]',
    ],
    # Names near their edges.
    ["--set", "fullnameOverride=" + "s" * 63],
    ["--set", "priorityClassName=system-cluster-critical"],
    ["--set", "image.tag=v1.2.3_rc-1."],  # a valid tag; the version label drops the trailing "."
    [
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.className=nginx.example",
        "--set-json",
        'ingress.tls=[{"secretName":"t","hosts":["*.example.com"]}]',
    ],
    ["--set", "httpRoute.enabled=true", "--set-json", 'httpRoute.hostnames=["*.example.com","flask-svc.local"]'],
    ["--set", "strategy.rollingUpdate.maxSurge=0", "--set", "strategy.rollingUpdate.maxUnavailable=1"],
    [
        "--set",
        "podSecurityContext.seccompProfile.type=Localhost",
        "--set",
        "podSecurityContext.seccompProfile.localhostProfile=p.json",
    ],
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
    "batch.resources.requests",
    "batch.resources.limits",
}


def _refers_to(node: dict[str, Any], definition: str) -> bool:
    target = f"#/definitions/{definition}"
    return node.get("$ref") == target or any(sub.get("$ref") == target for sub in node.get("allOf", []))


def _maps_written_as_metadata(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, "labels" or "annotations") for every map of values.yaml named like labels or annotations."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, dict) and key.lower().endswith(("labels", "annotations")):
            yield (*path, key), "labels" if key.lower().endswith("labels") else "annotations"
        else:
            yield from _maps_written_as_metadata(value, (*path, key))


def test_every_label_and_annotation_map_uses_the_shared_definition() -> None:
    """A label or annotation map added to values.yaml must get the Kubernetes syntax check too."""
    maps = [*_maps_written_as_metadata(DEFAULTS), (("nodeSelector",), "labels")]
    assert len(maps) >= 20
    unchecked = [".".join(path) for path, kind in maps if not _refers_to(_schema_at(path) or {}, kind)]
    assert not unchecked, f"maps without the {{labels, annotations}} definitions: {unchecked}"


def _definition(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{name}", "definitions": SCHEMA["definitions"]})


@pytest.mark.parametrize(
    ("definition", "valid", "invalid"),
    [
        (
            "labelKey",
            ["a", "A", "a" * 63, "a.b_c-D", "example.com/team", "a" * 253 + "/" + "b" * 63, "k8s.io/a.b"],
            ["", "a" * 64, "a" * 254 + "/b", "-a", "a-", "_a", "a b", "/a", "a/", "a/b/c", "Example.com/a", "a..b/c"],
        ),
        ("annotationKey", ["Example.COM/Owner", "owner", "a" * 253 + "/x"], ["", "a b", "a_b/c", "/x", "a/b/c"]),
        ("labelValue", ["", "a", "A", "a" * 63, "a.b_c-1", "1.0"], ["a" * 64, "-a", "a.", "_a", "a b", "a/b", "é"]),
    ],
)
def test_label_syntax_at_its_edges(definition: str, valid: list[str], invalid: list[str]) -> None:
    validator = _definition(definition)
    assert [v for v in valid if not validator.is_valid(v)] == []
    assert [v for v in invalid if validator.is_valid(v)] == []


def test_a_release_name_that_cannot_name_a_service_is_refused(chart: Helm) -> None:
    """Helm accepts release names with dots; the Service (a DNS-1035 label) does not, after earlier objects exist."""
    result = chart.template(release="my.app")
    assert result.returncode != 0
    assert 'the resource name "my.app-flask-svc"' in result.stderr and "fullnameOverride" in result.stderr
    assert chart.template("--set", "fullnameOverride=my-app", release="my.app").returncode == 0


def test_the_version_label_is_a_valid_label_value(chart: Helm) -> None:
    """Any valid image tag, even one ending in '.' or longer than 63 characters, gives a valid version label."""
    tag = "v1.2.3-" + "x" * 55 + ".build"  # truncated to 63 characters, it ends in "."
    deployment = one(chart.render("--set", f"image.tag={tag}"), "Deployment")
    version = deployment["metadata"]["labels"]["app.kubernetes.io/version"]
    assert version == tag[:62]
    assert _definition("labelValue").is_valid(version)
