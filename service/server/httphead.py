"""Just enough of an HTTP/1 request head for the worker's loop: is it complete yet, and is it a liveness probe.

gunicorn's parser still parses every request a thread serves; this only decides when a connection is worth a
thread, so it errs towards "hand it over": anything unusual goes to the real parser, which answers it properly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.names import LIVENESS_PATHS

HEAD_END = b"\r\n\r\n"
# A head longer than this is refused (431) before it reaches a thread: bounds each waiting connection's memory.
MAX_HEAD_BYTES = 64 * 1024
# The loop answers only small, well-formed probes: within gunicorn's default limits (4094-byte request line, 100
# header fields) by construction, so it never accepts what the parser would refuse.
_PROBE_HEAD_BYTES = 4094
_PROBE_FIELDS = 100
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Head:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names; a repeated name keeps its last value (enough for the checks here)
    size: int  # bytes up to and including the blank line, leading empty lines included
    well_formed: bool  # small, three-word request line, every field a token, a colon and a value

    @property
    def has_body(self) -> bool:
        return "transfer-encoding" in self.headers or self.headers.get("content-length", "0").strip() != "0"

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return self.version == "HTTP/1.0" and "keep-alive" in tokens

    @property
    def is_liveness(self) -> bool:
        """A plain GET or HEAD of a liveness path, with no body: the loop can answer it without a thread."""
        return (
            self.well_formed
            and self.method in ("GET", "HEAD")
            and self.target in LIVENESS_PATHS
            and self.version in ("HTTP/1.0", "HTTP/1.1")
            and not self.has_body
        )


def read_head(buffer: bytes | bytearray, probes_only: bool = False) -> Head | None:
    """The request head at the start of ``buffer``, or None while it is incomplete.

    Empty lines before the request line are skipped, as RFC 9112 §2.2 allows; a request line that is not three
    words gives a Head no check matches, so the parser behind it answers 400. With ``probes_only`` the fields of a
    head whose request line is no liveness probe are not read (``headers`` empty, ``well_formed`` False): all the
    worker's loop needs to know of it is that it is complete, and gunicorn's parser reads it again anyway.
    """
    data = bytes(buffer)
    start = len(data) - len(data.lstrip(b"\r\n"))
    end = data.find(HEAD_END, start)
    if end < 0:
        return None
    lines = data[start:end].decode("latin-1").split("\r\n")
    words = lines[0].split(" ")
    method, target, version = words if len(words) == 3 else ("", "", "")
    if probes_only and not (method in ("GET", "HEAD") and target.partition("?")[0] in LIVENESS_PATHS):
        return Head(method, target.partition("?")[0], version, {}, end + len(HEAD_END), well_formed=False)
    headers = {}
    well_formed = len(words) == 3 and end + len(HEAD_END) <= _PROBE_HEAD_BYTES and len(lines) <= _PROBE_FIELDS + 1
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        well_formed = well_formed and bool(colon) and _TOKEN.fullmatch(name) is not None
        headers[name.strip().lower()] = value.strip()
    return Head(method, target.partition("?")[0], version, headers, end + len(HEAD_END), well_formed)
