"""Callback authentication: each job's stages get a secret of their own and sign what they report with it.

The coordinator holds one key (the file ``FLASK_SVC_BATCH_CALLBACK_KEY_FILE`` names — on Kubernetes a Secret the stage
pods do not mount — or else a key file it creates in the data directory);
a job's secret is HMAC(key, job id), so nothing per job is stored and every replica derives the same secret. Only
the job's stages are handed it (in their environment). A stage signs the exact body it sends:
``X-Batch-Signature: sha256=<hex HMAC(secret, body)>``; the body names the job, so a signature made for one job
is worthless for another.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from service.names import JOBS_PATH
from service.privatedirs import ensure_directory, open_private_file

SIGNATURE_HEADER = "X-Batch-Signature"
EVENTS = "events"  # a job's callback route is {JOBS_PATH}/<job id>/events
JOB_SECRET_ENV = "FLASK_SVC_BATCH_JOB_SECRET"  # noqa: S105 — the variable's name, not a secret
_SCHEME = "sha256="
_KEY_FILE = ".callback-key"


def event_url(base_url: str, job_id: str) -> str:
    """Where a job's stages report their outcome, under the service's base URL."""
    return f"{base_url.rstrip('/')}{JOBS_PATH}/{job_id}/{EVENTS}"


def load_key(root: Path, key_file: str) -> bytes:
    """The key in ``key_file``, else in the data directory's key file (created once, readable by this user only)."""
    if key_file:
        key = Path(key_file).read_text().strip()
        if not key:
            raise RuntimeError(f"{key_file} is empty")
        return key.encode()
    path = root / _KEY_FILE
    ensure_directory(root)  # a key in a directory others could write to could be theirs
    if not os.path.lexists(path):
        # Written whole under a private name, then linked into place: a worker starting beside this one finds
        # either no key or the whole key, never an empty file; the first link wins and every worker reads it.
        draft = root / f"{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    # Trusted only as a regular file of this user's that nobody else may read (raises NotPrivate otherwise).
    with os.fdopen(open_private_file(path), "rb") as private:
        stored = private.read().strip()
    if not stored:
        raise RuntimeError(f"{path} is empty")
    return stored


def job_secret(key: bytes, job_id: str) -> str:
    return hmac.new(key, f"flask-svc-batch-job:{job_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> str:
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, and any client can send those.
    given = signature.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(sign(secret, body).encode(), given)
