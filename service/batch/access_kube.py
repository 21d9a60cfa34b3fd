"""The cluster decides (``FLASK_SVC_BATCH_AUTH=kubernetes``): a ``TokenReview`` says who a token belongs to, a
``SubjectAccessReview`` what that user may do; answers cached for ``CACHE_SECONDS`` under the token's SHA-256."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, Protocol

from service.batch.access import (
    ADMIN_SUBRESOURCE,
    API_GROUP,
    RESOURCE,
    Mode,
    RejectedToken,
    ReviewUnavailable,
    User,
    Verb,
    bearer_token,
    token_key,
)
from service.names import SERVICE_ACCOUNT_DIR

log = logging.getLogger("service.batch.access")  # its lines keep the logger they always had
SA_NAMESPACE = Path(SERVICE_ACCOUNT_DIR) / "namespace"
CACHE_SECONDS = 10.0
CACHE_ENTRIES = 4096


class TtlCache:
    """A small thread-safe map whose entries expire after ``ttl`` seconds; the oldest go first when full."""

    def __init__(
        self, ttl: float = CACHE_SECONDS, size: int = CACHE_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self.clock() + self.ttl, value)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Reviews(Protocol):
    """The two API calls the kubernetes gate makes (``KubeReviews`` in a pod; a fake in unit tests)."""

    def token_review(self, token: str) -> User | None:
        """The token's user, None when the API server does not accept it; ``ReviewUnavailable`` when it cannot say."""

    def access_review(self, user: User, verb: Verb, subresource: str, namespace: str) -> bool: ...


class KubernetesGate:
    mode = Mode.KUBERNETES

    def __init__(self, reviews: Reviews, namespace: str, cache: TtlCache | None = None) -> None:
        self.reviews = reviews
        self.namespace = namespace
        self.cache = cache if cache is not None else TtlCache()

    def authenticate(self, authorization: str | None) -> User:
        token = bearer_token(authorization)
        key = ("user", token_key(token))
        cached = self.cache.get(key)
        if cached is None:
            user = self.reviews.token_review(token)
            cached = user if user is None else User(user.name, key[1], user.groups, user.uid, user.extra)
            self.cache.put(key, cached or False)  # a rejection is cached too: a bad token cannot hammer the API
        if not cached:
            raise RejectedToken("the cluster does not accept this bearer token")
        user_: User = cached
        return user_

    def allowed(self, user: User, verb: Verb, *, everyone: bool = False) -> bool:
        subresource = ADMIN_SUBRESOURCE if everyone else ""
        key = ("access", user.key, verb.value, subresource)
        cached = self.cache.get(key)
        if cached is None:
            cached = self.reviews.access_review(user, verb, subresource, self.namespace)
            self.cache.put(key, cached)
        return bool(cached)


class KubeReviews:
    """TokenReview and SubjectAccessReview through the official client, with the pod's own credentials."""

    _TIMEOUT = (3.05, 5)  # connect, read: a request thread must not wait long for the API server

    def __init__(self, configuration: Any = None) -> None:
        from kubernetes import client, config  # about half a second: only in this mode

        from service.batch.kube import api_client

        try:
            api = api_client(configuration)
        except config.ConfigException as error:
            raise ValueError(f"it needs a pod's service account: {error}") from None
        self._client = client
        self._authn = client.AuthenticationV1Api(api)
        self._authz = client.AuthorizationV1Api(api)

    def _call(self, what: str, call: Callable[..., Any], body: Any) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return call(body, _request_timeout=self._TIMEOUT)
        except ApiException as error:  # 4xx too: the service's own rights are missing, which no caller can fix
            raise ReviewUnavailable(f"the Kubernetes API refused the {what}: {error.status} {error.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ReviewUnavailable(f"the Kubernetes API is unreachable ({what}): {error}") from None

    def token_review(self, token: str) -> User | None:
        c = self._client
        review = c.V1TokenReview(spec=c.V1TokenReviewSpec(token=token))
        status = self._call("TokenReview", self._authn.create_token_review, review).status
        if status is None or not status.authenticated or status.user is None:
            return None
        extra = tuple(sorted((k, tuple(v or ())) for k, v in (status.user.extra or {}).items()))
        return User(status.user.username or "", "", tuple(status.user.groups or ()), status.user.uid or "", extra)

    def access_review(self, user: User, verb: Verb, subresource: str, namespace: str) -> bool:
        c = self._client
        attributes = c.V1ResourceAttributes(
            namespace=namespace, verb=verb.value, group=API_GROUP, resource=RESOURCE, subresource=subresource or None
        )
        spec = c.V1SubjectAccessReviewSpec(
            user=user.name,
            groups=list(user.groups),
            uid=user.uid or None,
            extra={k: list(v) for k, v in user.extra} or None,
            resource_attributes=attributes,
        )
        review = c.V1SubjectAccessReview(spec=spec)
        status = self._call("SubjectAccessReview", self._authz.create_subject_access_review, review).status
        return bool(status and status.allowed and not status.denied)


def in_cluster(environ: Mapping[str, str]) -> bool:
    """Whether a pod's service account is there for the API calls (what the client's in-cluster config reads)."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and (SA_NAMESPACE.parent / "token").is_file()
