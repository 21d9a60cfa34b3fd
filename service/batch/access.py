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

The gates: ``OpenGate`` and ``ClosedGate`` here, ``TokenGate`` in ``access_tokens``, ``KubernetesGate`` in
``access_kube``; batch's ``init_app`` picks one. The cluster's answers are cached for ``CACHE_SECONDS`` under the
token's SHA-256 (never the token itself). When the API server cannot answer, ``ReviewUnavailable`` is raised —
never "allowed".
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

API_GROUP = "flask-svc.dev"
RESOURCE = "analysisjobs"
ADMIN_SUBRESOURCE = "all"  # `analysisjobs/all`: the verb on every user's jobs
AUTH_VARIABLE = "FLASK_SVC_BATCH_AUTH"
TOKENS_VARIABLE = "FLASK_SVC_BATCH_AUTH_TOKENS_FILE"
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
