"""The value class every metric of a gunicorn worker writes through: the same multiprocess files as
prometheus_client's, written for a request path that writes several values a request."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from typing import ClassVar

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict, mmap_key


class MultiProcessValue:
    """A sample's value in this process's multiprocess file: prometheus_client's ``MultiProcessValue`` made for the
    request path, which writes several a request. The same files, keys and layout (its ``MmapedDict``) and one lock
    for every value, as upstream; but upstream asks the process id on every write (a system call) and then looks the
    key up and calls twice to store two doubles. Here each value keeps its offset in the file and writes there, and
    the files are reopened in a forked child (``os.register_at_fork``) instead of checked for a fork at every write.
    Installed by ``service.metrics`` at its import, before this process creates any metric (``install``)."""

    _multiprocess = True
    _lock = threading.Lock()
    _files: ClassVar[dict[str, MmapedDict]] = {}  # by file prefix (counter, histogram, gauge_livesum …)
    _made: ClassVar[list[MultiProcessValue]] = []  # every value, reopened in a forked child

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: Sequence[str],
        labelvalues: Sequence[str],
        help_text: str,
        multiprocess_mode: str = "",
        **_kwargs: object,
    ) -> None:
        self._prefix = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)  # type: ignore[arg-type]
        with self._lock:
            self._open()
            self._made.append(self)

    def _open(self) -> None:
        """Find (or add) this value in this process's file, and read it (0 in a file just made)."""
        file = self._files.get(self._prefix)
        if file is None:
            path = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], f"{self._prefix}_{os.getpid()}.db")
            file = self._files[self._prefix] = MmapedDict(path)  # type: ignore[no-untyped-call]
        self._file = file
        self._value, self._timestamp = file.read_value(self._key)  # type: ignore[no-untyped-call]
        self._at = file._positions[self._key]  # fixed for the file's life; the mapping may be replaced as it grows

    def inc(self, amount: float) -> None:
        with self._lock:
            self._value = value = self._value + amount
            self._timestamp = 0.0
            self._file._m[self._at : self._at + 16] = _TWO_DOUBLES(value, 0.0)  # one assignment: never half-written

    def set(self, value: float, timestamp: float | None = None) -> None:
        with self._lock:
            self._value, self._timestamp = value, timestamp or 0.0
            self._file._m[self._at : self._at + 16] = _TWO_DOUBLES(value, self._timestamp)

    def get(self) -> float:
        with self._lock:
            value: float = self._value
            return value

    def set_exemplar(self, _exemplar: object) -> None:
        """Upstream keeps no exemplars in multiprocess mode either."""

    def get_exemplar(self) -> None:
        return None

    @classmethod
    def reopen_in_child(cls) -> None:
        """After a fork: this process's own files, every value starting again from them. A new lock too: another
        thread of the parent may have held the old one at the fork."""
        cls._lock = threading.Lock()
        for file in cls._files.values():
            file.close()  # type: ignore[no-untyped-call]
        cls._files.clear()
        for value in cls._made:
            value._open()


_TWO_DOUBLES = struct.Struct("dd").pack


def install() -> None:
    """Used for every metric made from now on when prometheus_client is in multiprocess mode (it chose so at its
    import, from ``PROMETHEUS_MULTIPROC_DIR``)."""
    if getattr(values.ValueClass, "_multiprocess", False) and values.ValueClass is not MultiProcessValue:
        os.register_at_fork(after_in_child=MultiProcessValue.reopen_in_child)
        values.ValueClass = MultiProcessValue
