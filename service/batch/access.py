"""Who may use the batch API: the caller's bearer token checked, and what it may do decided, by a configured gate.

Plain Python, no web framework. Three modes (``FLASK_SVC_BATCH_AUTH``):

- ``kubernetes``: the cluster decides. A ``TokenReview`` says who the token belongs to; a ``SubjectAccessReview``
  says whether that user may ``create``, ``get``, ``list`` or ``delete`` the virtual resource ``analysisjobs`` in the
  API group ``flask-svc.dev`` in the release's namespace. No such resource is served: RBAC rules may name any
  resource, so operators grant access with ordinary Roles. *Admin* — seeing and acting on other users' jobs — is the
  same verb on the subresource ``analysisjobs/all``. The service needs ``system:auth-delegator`` (the chart binds it).
- ``token``: static bearer tokens from a file (a mounted Secret), one per line: ``token``, ``token,username`` or
  ``token,username,admin``. Compared in constant time; re-read when the file changes.
- ``none``: everyone is the anonymous admin. ``auto`` (the default) is ``none`` on a loopback bind (``make run``) and
  otherwise refuses every request, so a service reachable from the network never runs jobs for anonymous callers.

Answers are cached for ``CACHE_SECONDS`` under the token's SHA-256 (never the token itself). When the API server
cannot answer, ``ReviewUnavailable`` is raised — never "allowed".
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from service.names import SERVICE_ACCOUNT_DIR

log = logging.getLogger(__name__)

API_GROUP = "flask-svc.dev"
RESOURCE = "analysisjobs"
ADMIN_SUBRESOURCE = "all"  # `analysisjobs/all`: the verb on every user's jobs
AUTH_VARIABLE = "FLASK_SVC_BATCH_AUTH"
TOKENS_VARIABLE = "FLASK_SVC_BATCH_AUTH_TOKENS_FILE"
_SA_NAMESPACE = Path(SERVICE_ACCOUNT_DIR) / "namespace"
CACHE_SECONDS = 10.0
CACHE_ENTRIES = 4096
ANONYMOUS = ""  # the owner of jobs made without authentication


class Mode(enum.StrEnum):
    KUBERNETES = "kubernetes"
    TOKEN = "token"  # noqa: S105 — a mode's name, not a secret
    NONE = "none"
    REFUSE = "refuse"  # `auto` off loopback: no authentication configured


class Verb(enum.StrEnum):
    CREATE = "create"
    GET = "get"
    LIST = "list"
    DELETE = "delete"


@dataclass(frozen=True)
class User:
    """An authenticated caller. ``key`` is the token's hash (caches key on it); ``groups``/``uid``/``extra`` are what
    the TokenReview said, passed on to the SubjectAccessReview."""

    name: str
    key: str = ""
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


class AccessError(Exception):
    """The request may not go on; the message says why (safe to show the caller)."""


class MissingToken(AccessError):
    pass


class RejectedToken(AccessError):
    pass


class NotConfigured(AccessError):
    """``auto`` off loopback: nobody is allowed until an operator chooses a mode."""


class Forbidden(AccessError):
    pass


class ReviewUnavailable(AccessError):
    """The authority (the API server) could not answer; the request must be retried, never allowed."""


def resolve_mode(auth: str, host: str) -> Mode:
    """The mode ``FLASK_SVC_BATCH_AUTH`` asks for; ``auto`` is ``none`` when the service listens on loopback only."""
    if auth != "auto":
        return Mode(auth)
    return Mode.NONE if is_loopback(host) else Mode.REFUSE


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_note(mode: Mode) -> str | None:
    """One line for the start log when batch jobs will be refused for want of a mode."""
    if mode is not Mode.REFUSE:
        return None
    return (
        f"batch jobs refuse every request: no authentication is configured and the service listens beyond "
        f"loopback; set {AUTH_VARIABLE} to kubernetes, token or none"
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; ``MissingToken`` when there is none."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken("send a bearer token: Authorization: Bearer <token>")
    return token.strip()


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class Gate(Protocol):
    mode: Mode

    def authenticate(self, authorization: str | None) -> User:
        """Who sends this ``Authorization`` header; raises an ``AccessError`` otherwise."""

    def allowed(self, user: User, verb: Verb, *, everyone: bool = False) -> bool:
        """Whether ``user`` may do ``verb`` on their own jobs, or (``everyone``) on every user's."""


def require(gate: Gate, user: User, verb: Verb, *, everyone: bool = False) -> None:
    if not gate.allowed(user, verb, everyone=everyone):
        scope = f"{RESOURCE}/{ADMIN_SUBRESOURCE}" if everyone else RESOURCE
        raise Forbidden(f"{user.name or 'anonymous'} may not {verb.value} {scope}.{API_GROUP}")


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


# --- none and refuse ---------------------------------------------------------------------------------------------


class OpenGate:
    """``none``: every caller is the anonymous admin (the operator chose it, or only this host can reach us)."""

    mode = Mode.NONE

    def authenticate(self, authorization: str | None) -> User:
        return User(ANONYMOUS)

    def allowed(self, user: User, verb: Verb, *, everyone: bool = False) -> bool:
        return True


class ClosedGate:
    mode = Mode.REFUSE

    def authenticate(self, authorization: str | None) -> User:
        raise NotConfigured(f"batch jobs are off until the operator sets {AUTH_VARIABLE} (kubernetes, token or none)")

    def allowed(self, user: User, verb: Verb, *, everyone: bool = False) -> bool:
        return False


# --- token -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaticToken:
    secret: bytes
    user: User
    admin: bool


def parse_tokens(text: str) -> list[StaticToken]:
    """The lines of a token file: ``token[,username[,admin]]``; blank lines and ``#`` comments skipped. A token with
    no name is named after its hash, so its jobs stay its own when other lines change."""
    tokens: list[StaticToken] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) > 3 or not fields[0] or (len(fields) == 3 and fields[2] != "admin"):
            raise ValueError(f"line {number} is not token[,username[,admin]]")
        key = token_key(fields[0])
        name = fields[1] if len(fields) > 1 and fields[1] else f"token:{key[:12]}"
        tokens.append(StaticToken(fields[0].encode(), User(name, key), len(fields) == 3))
    if not tokens:
        raise ValueError("it holds no token")
    return tokens


def read_token_file(path: str) -> list[StaticToken]:
    """The file's tokens; ``OSError`` or ``ValueError`` (naming the line) when it cannot be used."""
    if not path:
        raise ValueError("it is not set")
    return parse_tokens(Path(path).read_text(encoding="utf-8"))


class TokenGate:
    """``token``: a caller is whoever holds one of the file's tokens; every holder may use their own jobs, an
    ``admin`` line everyone's. The file is read again when it changes (a Secret's mounted file is replaced)."""

    mode = Mode.TOKEN

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._tokens = read_token_file(path)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _current(self) -> list[StaticToken]:
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            with self._lock:
                try:
                    self._tokens = read_token_file(self.path)
                except (OSError, ValueError) as error:  # keep the last good tokens: a half-written file is no outage
                    log.warning("token file not reloaded", extra={"path": self.path, "error": str(error)})
                self._seen = stamp
        return self._tokens

    def authenticate(self, authorization: str | None) -> User:
        presented = bearer_token(authorization).encode("utf-8", "surrogateescape")
        match = None
        for token in self._current():  # every token compared, so the time says nothing about which matched
            if hmac.compare_digest(presented, token.secret):
                match = token
        if match is None:
            raise RejectedToken("the bearer token is not valid")
        return match.user

    def allowed(self, user: User, verb: Verb, *, everyone: bool = False) -> bool:
        if not everyone:
            return True
        return any(token.admin and token.user == user for token in self._current())


# --- kubernetes --------------------------------------------------------------------------------------------------


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
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and (_SA_NAMESPACE.parent / "token").is_file()


def make_gate(mode: Mode, tokens_file: str, namespace: str) -> Gate:
    """The gate for ``mode``; ``OSError``/``ValueError`` when it cannot work (no token file, no service account)."""
    if mode is Mode.KUBERNETES:
        reviews = KubeReviews()
        return KubernetesGate(reviews, namespace or _SA_NAMESPACE.read_text().strip())
    if mode is Mode.TOKEN:
        return TokenGate(tokens_file)
    if mode is Mode.NONE:
        return OpenGate()
    return ClosedGate()
