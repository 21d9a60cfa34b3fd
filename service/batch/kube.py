"""The Kubernetes runner: one Job per stage, created through the official client with the pod's own credentials.

This module imports the ``kubernetes`` package (about half a second and tens of MB), so it is imported only when
``FLASK_SVC_BATCH_RUNNER=kubernetes``. The Job spec comes from the chart (``FLASK_SVC_BATCH_JOB_TEMPLATE``: image,
security context, resources, the shared volume, backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished); the
runner adds the name, the labels, the stage's arguments and its environment. The name is ``<prefix>-<job id>-<stage>``:
creating an existing one is a no-op (409), so two replicas racing create one Job.

The tokenize stage is ONE Indexed Job over the shard plan (``completions``: the shards, ``parallelism``:
``FLASK_SVC_BATCH_PARALLELISM``, each pod's ``map`` reading ``JOB_COMPLETION_INDEX``): Kubernetes reruns a failed
index on its own (``backoffLimitPerIndex``, the chart's ``backoffLimit`` per shard), fails the Job at once on a
permanent exit code (the template's ``podFailurePolicy``) and as soon as one index has used its retries
(``maxFailedIndexes: 0``). The count stage is one Job running the merge.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from service.batch.runner import Phase, RunnerUnavailable, StageStatus
from service.batch.states import COMMAND, MAP, Stage
from service.config_fields import ConfigError
from service.names import SERVICE_ACCOUNT_DIR

if TYPE_CHECKING:
    from service.config import Settings

JOB_ID_LABEL = "flask-svc.dev/batch-job"
STAGE_LABEL = "flask-svc.dev/batch-stage"
_NAMESPACE_FILE = Path(SERVICE_ACCOUNT_DIR) / "namespace"
_TIMEOUT = (3.05, 10)  # connect, read: a request must not hold a request thread for long
_MAX_PREFIX = 63 - 21 - len("-tokenize") - 1  # Job names become pod labels: 63 characters at most


def namespace(settings: Settings) -> str:
    """The release namespace: the Downward API's, else the service account's."""
    return settings.pod_namespace or _NAMESPACE_FILE.read_text().strip()


def api_client(configuration: client.Configuration | None = None) -> client.ApiClient:
    """A client with ``configuration``, else the pod's own credentials (``config.ConfigException`` outside a pod);
    one retry either way: callers fail fast when the API server is away (reconciling retries later, a request gets
    503)."""
    if configuration is None:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
    configuration.retries = 1
    return client.ApiClient(configuration)


class KubernetesRunner:
    name = "kubernetes"

    def __init__(self, settings: Settings, configuration: client.Configuration | None = None) -> None:
        """In-cluster credentials unless a ``configuration`` is given (another cluster, a test)."""
        try:
            api = api_client(configuration)
        except config.ConfigException as error:
            raise ConfigError(f"FLASK_SVC_BATCH_RUNNER=kubernetes needs a pod's service account: {error}") from None
        self.api = client.BatchV1Api(api)
        self.namespace = namespace(settings)
        self.template: dict[str, Any] = json.loads(settings.batch_job_template)
        prefix = str(self.template.get("metadata", {}).get("name") or "batch")
        self.prefix = prefix[:_MAX_PREFIX].rstrip("-")
        self.parallelism = settings.batch_parallelism or 1  # the service pod's CPU count says nothing of the nodes'

    def stage_name(self, job_id: str, stage: Stage) -> str:
        return f"{self.prefix}-{job_id}-{stage.value}"

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call; an unreachable or failing API becomes ``RunnerUnavailable``. Returns None on 404."""
        try:
            return call(*args, _request_timeout=_TIMEOUT, **kwargs)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 409:
                raise
            raise RunnerUnavailable(f"the Kubernetes API refused to {what}: {error.status} {error.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise RunnerUnavailable(f"the Kubernetes API is unreachable ({what}): {error}") from None

    def check(self) -> None:
        self._call("list Jobs", self.api.list_namespaced_job, self.namespace, limit=1)

    def manifest(self, job_id: str, stage: Stage, env: Mapping[str, str], shards: int = 1) -> dict[str, Any]:
        job = copy.deepcopy(self.template)
        name = self.stage_name(job_id, stage)
        labels = {JOB_ID_LABEL: job_id, STAGE_LABEL: stage.value}
        metadata = job.setdefault("metadata", {})
        metadata["name"] = name
        metadata.setdefault("labels", {}).update(labels)
        pod = job.setdefault("spec", {}).setdefault("template", {})
        pod.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        container = pod["spec"]["containers"][0]
        container["args"] = [COMMAND[stage], job_id]
        container["env"] = [*container.get("env", []), *({"name": k, "value": v} for k, v in env.items())]
        if COMMAND[stage] == MAP:
            spec = job["spec"]
            retries = spec.pop("backoffLimit", None)  # per index instead: one shard's retries are its own
            spec.update(completionMode="Indexed", completions=shards, parallelism=min(self.parallelism, shards))
            spec.update(backoffLimitPerIndex=6 if retries is None else retries, maxFailedIndexes=0)
        return job

    def start(self, job_id: str, stage: Stage, env: Mapping[str, str], shards: int = 1) -> str:
        name = self.stage_name(job_id, stage)
        manifest = self.manifest(job_id, stage, env, shards)
        with contextlib.suppress(ApiException):  # 409: it exists already, which is what was wanted
            self._call("create a Job", self.api.create_namespaced_job, self.namespace, manifest)
        return name

    def status(self, job_id: str, stage: Stage) -> StageStatus:
        job = self._call("read a Job", self.api.read_namespaced_job, self.stage_name(job_id, stage), self.namespace)
        if job is None:
            return StageStatus(Phase.MISSING)
        for condition in (job.status and job.status.conditions) or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                return StageStatus(Phase.SUCCEEDED)
            if condition.type in ("Failed", "FailureTarget"):
                detail = f"{condition.reason}: {condition.message}" if condition.message else condition.reason
                return StageStatus(Phase.FAILED, f"the {stage.value} Job failed ({detail})")
        return StageStatus(Phase.RUNNING)

    def active(self) -> set[str]:
        """Jobs with a stage Job of this release not yet Complete or Failed (its pod may still be exiting after it
        wrote its outcome): one list call."""
        listed = self._call("list Jobs", self.api.list_namespaced_job, self.namespace, label_selector=JOB_ID_LABEL)
        running = set()
        for job in listed.items if listed is not None else []:
            if not job.metadata.name.startswith(f"{self.prefix}-"):
                continue
            conditions = (job.status and job.status.conditions) or []
            if not any(c.status == "True" and c.type in ("Complete", "Failed") for c in conditions):
                running.add(job.metadata.labels[JOB_ID_LABEL])
        return running

    def cancel(self, job_id: str) -> None:
        for stage in Stage:
            self._call(
                "delete a Job",
                self.api.delete_namespaced_job,
                self.stage_name(job_id, stage),
                self.namespace,
                propagation_policy="Background",  # its pods go too
            )
