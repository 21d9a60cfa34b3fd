"""Cross-site requests refused: a state-changing request whose ``Origin`` names another site gets a 403 problem
before any handler runs.

A browser sends ``Origin`` with every cross-origin request and with every POST, and any web page can make it send
a form or a ``text/plain`` POST without asking first (no CORS preflight): without this check, a page a developer
visits could start batch jobs on their ``make run`` or flip the debug switches. Requests without ``Origin`` — curl,
API clients, the batch stages' callbacks — are not a browser's and pass; so do the page's own forms.

The service's own origin is the request's ``Host``. Only host and port are compared, not the scheme: TLS usually
ends in front of the service (an ingress, a mesh), so the page is served over https while the service sees http;
another page cannot choose the Host its requests are sent with.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Request, request

from service.problems import Problem

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(host: str, port: int | None, scheme: str) -> tuple[str, int | None]:
    return host.lower(), None if port == _DEFAULT_PORTS.get(scheme) else port


def same_site(origin: str, host: str) -> bool:
    """Whether ``origin`` (an Origin header) names the server reached at ``host`` (a Host header)."""
    try:
        sent = urlsplit(origin)
        own = urlsplit(f"//{host}")
        if sent.scheme not in _DEFAULT_PORTS or not sent.hostname or not own.hostname:
            return False  # "null" (a sandboxed page, a file), or nothing an origin can be
        sent_port, own_port = sent.port, own.port
    except ValueError:  # a port that is not a number
        return False
    # The Host of a request to the default port of either scheme carries no port, or that port.
    own_authority = {_authority(own.hostname, own_port, scheme) for scheme in _DEFAULT_PORTS}
    return _authority(sent.hostname, sent_port, sent.scheme) in own_authority


def refuse_cross_origin() -> None:
    current: Request = request._get_current_object()  # type: ignore[attr-defined]  # once, not per attribute
    if current.method not in STATE_CHANGING:
        return
    origin = current.headers.get("Origin")
    if origin is not None and not same_site(origin, current.host):
        raise Problem(
            403,
            "cross_origin",
            f"a {current.method} from {origin[:200]!r} is refused: only this service's own pages may change its state",
        )


def init_app(app: Flask) -> None:
    """Check every request before its handler (the first of the before-request functions registered after it)."""
    app.before_request(refuse_cross_origin)
