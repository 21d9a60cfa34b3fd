"""Static bearer tokens (``FLASK_SVC_BATCH_AUTH=token``): a file of ``token[,username[,admin]]`` lines, compared in
constant time and re-read when the file changes."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from service.batch.access import Mode, RejectedToken, User, Verb, bearer_token, token_key

log = logging.getLogger("service.batch.access")  # its lines keep the logger they always had


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
